"""Benchmark: do realistic, drifted model edits apply byte-exactly, and never wrongly?

For each transition old → new (the micro ladder's records/micro/record_{i}/train_gpt.py → record_{i+1}; consecutive
records of a synced modded-nanogpt clone with --nanogpt; pairs from --pairs DIR; --synthetic chains of realistic
edits to a ~290-line training script), the true change is written in an edit format (SEARCH/REPLACE blocks from
`blocks_from_texts`, a unified diff, a *** Begin Patch envelope, the whole file, edit_file tool calls), perturbed
the way models drift, and sent through the one entry point the app uses, `edits.evaluate_answer`. Each case ends
one of three ways: applied correctly (result identical to `new`, byte for byte), refused (the verdict says why;
the model would be asked again), or wrongly applied (a different result and no refusal — must stay 0).

    python bench/edit_apply.py                        # micro ladder + 12 synthetic transitions, 5 seeds
    python bench/edit_apply.py --nanogpt CLONE        # + consecutive records of a modded-nanogpt clone (3 seeds)
    python bench/edit_apply.py --pairs DIR            # DIR/<name>/old.py + new.py pairs (or <name>.old.py/.new.py)
    python bench/edit_apply.py --make-pairs DIR       # write the synthetic pairs there (for --pairs)
    python bench/edit_apply.py --no-write             # print only; default also writes docs/edit-apply.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from copilot.core.edits import (  # noqa: E402
    ModelAnswer,
    ToolCall,
    blocks_from_texts,
    evaluate_answer,
    parse_edits,
)

PATH = "train_gpt.py"

# A realistic ~290-line training script: the start of the synthetic chains.
BASE_SCRIPT = '''"""A small GPT trained on byte-level shards; prints modded-nanogpt style log lines."""

import argparse
import glob
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)


@dataclass
class Hyperparameters:
    input_bin: str = "data/train_*.bin"
    input_val_bin: str = "data/val_*.bin"
    batch_size: int = 16
    seq_len: int = 256
    num_iterations: int = 1200
    warmup_iters: int = 100
    warmdown_iters: int = 300
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    val_every: int = 25
    val_tokens: int = 65536
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    vocab_size: int = 256


args = Hyperparameters()


def _peek_data_shard(filename):
    with open(filename, "rb") as f:
        header = np.frombuffer(f.read(256 * 4), dtype=np.int32)
    if header[0] != 20240520:
        raise ValueError(f"{filename}: magic number mismatch, is this a shard?")
    assert header[1] == 1, "unsupported version"
    return int(header[2])


def _load_data_shard(filename):
    with open(filename, "rb") as f:
        header = np.frombuffer(f.read(256 * 4), dtype=np.int32)
        assert header[0] == 20240520, "magic number mismatch in the data .bin file"
        ntok = int(header[2])
        tokens = np.frombuffer(f.read(), dtype=np.uint16)
    assert len(tokens) == ntok, "number of tokens read does not match header"
    return tokens


class DataLoader:
    def __init__(self, filename_pattern, B, T):
        self.B = B
        self.T = T
        self.files = sorted(glob.glob(filename_pattern))
        assert len(self.files) > 0, f"did not find any files that match the pattern {filename_pattern}"
        ntok_total = 0
        for fname in self.files:
            shard_ntok = _peek_data_shard(fname)
            assert shard_ntok >= B * T + 1
            ntok_total += shard_ntok
        self.ntok_total = ntok_total
        self.reset()

    def reset(self):
        self.current_shard = 0
        self.current_position = 0
        self.tokens = _load_data_shard(self.files[self.current_shard])

    def advance(self):
        self.current_shard = (self.current_shard + 1) % len(self.files)
        self.current_position = 0
        self.tokens = _load_data_shard(self.files[self.current_shard])

    def next_batch(self):
        B, T = self.B, self.T
        buf = self.tokens[self.current_position : self.current_position + B * T + 1]
        buf = torch.tensor(buf.astype(np.int64))
        x = buf[:-1].view(B, T)
        y = buf[1:].view(B, T)
        self.current_position += B * T
        if self.current_position + B * T + 1 > len(self.tokens):
            self.advance()
        return x, y


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.head_dim = self.n_embd // self.n_head
        assert self.n_embd % self.n_head == 0
        self.c_attn = nn.Linear(self.n_embd, 3 * self.n_embd, bias=False)
        self.c_proj = nn.Linear(self.n_embd, self.n_embd, bias=False)

    def forward(self, x):
        B, T, C = x.size()
        qkv = self.c_attn(x)
        q, k, v = qkv.split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        y = self.c_proj(y)
        return y


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        x = self.c_fc(x)
        x = F.gelu(x)
        x = self.c_proj(x)
        return x


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


@dataclass
class GPTConfig:
    vocab_size: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 256


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        tok_emb = self.transformer.wte(idx)
        pos_emb = self.transformer.wpe(pos)
        x = tok_emb + pos_emb
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


def get_lr(it):
    if it < args.warmup_iters:
        return args.learning_rate * (it + 1) / args.warmup_iters
    if it > args.num_iterations - args.warmdown_iters:
        decay_ratio = (args.num_iterations - it) / args.warmdown_iters
        return args.learning_rate * max(decay_ratio, 0.0)
    return args.learning_rate


def configure_optimizer(model):
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.dim() >= 2:
            decay.append(param)
        else:
            no_decay.append(param)
    groups = [
        {"params": decay, "weight_decay": args.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=args.learning_rate, betas=(0.9, 0.95), fused=False)


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    loader.reset()
    steps = args.val_tokens // (args.batch_size * args.seq_len)
    total = 0.0
    for _ in range(steps):
        x, y = loader.next_batch()
        _, loss = model(x, y)
        total += loss.item()
    model.train()
    return total / steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=None)
    parser.add_argument("--seed", type=int, default=0)
    cli = parser.parse_args()
    if cli.data:
        args.input_bin = os.path.join(cli.data, "train_*.bin")
        args.input_val_bin = os.path.join(cli.data, "val_*.bin")
    torch.manual_seed(cli.seed)
    np.random.seed(cli.seed)

    train_loader = DataLoader(args.input_bin, args.batch_size, args.seq_len)
    val_loader = DataLoader(args.input_val_bin, args.batch_size, args.seq_len)
    config = GPTConfig(
        vocab_size=args.vocab_size,
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
        block_size=args.seq_len,
    )
    model = GPT(config)
    optimizer = configure_optimizer(model)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model parameters: {n_params}")

    training_time_ms = 0.0
    t0 = time.perf_counter()
    for step in range(args.num_iterations + 1):
        last_step = step == args.num_iterations
        if last_step or (args.val_every > 0 and step % args.val_every == 0):
            training_time_ms += 1000 * (time.perf_counter() - t0)
            val_loss = evaluate(model, val_loader)
            step_avg = training_time_ms / max(step, 1)
            print(f"step:{step}/{args.num_iterations} val_loss:{val_loss:.4f} train_time:{training_time_ms:.0f}ms step_avg:{step_avg:.2f}ms")
            t0 = time.perf_counter()
        if last_step:
            break

        x, y = train_loader.next_batch()
        _, loss = model(x, y)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        lr = get_lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        approx_time = training_time_ms + 1000 * (time.perf_counter() - t0)
        print(f"step:{step + 1}/{args.num_iterations} train_loss:{loss.item():.4f} train_time:{approx_time:.0f}ms step_avg:{approx_time / (step + 1):.2f}ms")

    print(f"peak memory consumption: {0} MiB")


if __name__ == "__main__":
    main()
'''


# ---------------------------------------------------------------------------------------------------------
# Transitions


@dataclass(frozen=True)
class Pair:
    name: str
    old: str
    new: str


def ladder_pairs(records: Path) -> list[Pair]:
    scripts = []
    i = 0
    while (records / f"record_{i}" / "train_gpt.py").is_file():
        scripts.append((records / f"record_{i}" / "train_gpt.py").read_text())
        i += 1
    return [Pair(f"record_{n}→{n + 1}", scripts[n], scripts[n + 1]) for n in range(len(scripts) - 1)]


def nanogpt_pairs(clone: Path) -> list[Pair]:
    """Consecutive records with code of a modded-nanogpt clone (read at run time, never shipped): the main
    script of each, extracted by the same sync the product uses, into a temporary cache."""
    import tempfile

    from copilot.core.tracks.nanogpt_sync import nanogpt_cache_dir, sync_records

    with tempfile.TemporaryDirectory(prefix="edit-bench-") as tmp:
        index = sync_records(path=clone, cache_dir=Path(tmp))
        root = nanogpt_cache_dir(Path(tmp))
        scripts: list[tuple[int, str]] = []
        seen: set[int] = set()
        for rec in sorted(index.records, key=lambda r: (r.number, r.retiming)):
            if rec.number in seen or not rec.has_code or not rec.code_paths:
                continue
            seen.add(rec.number)
            scripts.append((rec.number, (root / rec.code_paths[0]).read_text(encoding="utf-8")))
    return [Pair(f"#{a}→#{b}", old, new) for (a, old), (b, new) in zip(scripts, scripts[1:]) if old != new]


def dir_pairs(folder: Path) -> list[Pair]:
    pairs = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        olds, news = sorted(sub.glob("old*")), sorted(sub.glob("new*"))
        if olds and news:
            pairs.append(Pair(sub.name, olds[0].read_text(), news[0].read_text()))
    for old in sorted(folder.glob("*.old.*")):
        new = old.with_name(old.name.replace(".old.", ".new."))
        if new.is_file():
            pairs.append(Pair(old.name.split(".old.")[0], old.read_text(), new.read_text()))
    return pairs


# Realistic edits to a training script, used to build synthetic chains.
_NEW_STATEMENTS = [
    "assert not torch.isnan(loss).any(), 'loss is nan'",
    "torch.cuda.synchronize() if torch.cuda.is_available() else None",
    "n_tokens = args.batch_size * args.seq_len",
    "t1 = time.perf_counter()",
    "# keep this in sync with the data format",
    "x = x.contiguous()",
]
_HELPER = [
    "def rms_norm(x, eps=1e-6):",
    "    # parameter-free RMS normalisation over the last dimension",
    "    scale = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)",
    "    return x * scale",
    "",
    "",
]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _body_lines(lines: list[str]) -> list[int]:
    """Simple statements inside functions: safe places to insert after, modify or delete."""
    out = []
    for n, line in enumerate(lines[:-1]):
        s = line.strip()
        if _indent(line) < 4 or not s or s.startswith(("def ", "class ", "@", "return", '"', "elif", "else")):
            continue
        if s.endswith((":", "(", "[", "{", ",", "\\")) or _indent(lines[n + 1]) > _indent(line):
            continue
        if n > 0 and lines[n - 1].rstrip().endswith((",", "(", "[")):
            continue
        out.append(n)
    return out


def edit_tweak_number(lines: list[str], rng: random.Random) -> bool:
    cands = [n for n, l in enumerate(lines) if re.search(r"(=|: \w+ =)\s*\d+(\.\d+)?(e-?\d+)?\b", l)]
    if not cands:
        return False
    n = rng.choice(cands)
    m = re.search(r"\d+(\.\d+)?(e-?\d+)?\b", lines[n].split("=", 1)[1])
    head, tail = lines[n].split("=", 1)
    old = m.group(0)
    new = str(rng.choice([2, 3, 5, 8, 12, 64, 0.05, 3e-3, 0.9]))
    if new == old:
        return False
    lines[n] = head + "=" + tail[: m.start()] + new + tail[m.end() :]
    return True


def edit_insert(lines: list[str], rng: random.Random) -> bool:
    n = rng.choice(_body_lines(lines))
    lines.insert(n + 1, " " * _indent(lines[n]) + rng.choice(_NEW_STATEMENTS))
    return True


def edit_delete(lines: list[str], rng: random.Random) -> bool:
    cands = [n for n in _body_lines(lines) if not lines[n - 1].rstrip().endswith(":")]
    if not cands:
        return False
    del lines[rng.choice(cands)]
    return True


def edit_modify_call(lines: list[str], rng: random.Random) -> bool:
    cands = [n for n in _body_lines(lines) if lines[n].rstrip().endswith(")") and "(" in lines[n]]
    if not cands:
        return False
    n = rng.choice(cands)
    extra = rng.choice([", dim=-1", ", non_blocking=True", ", out=None", ", eps=1e-5"])
    lines[n] = lines[n].rstrip()[:-1] + extra + ")"
    return True


def edit_add_function(lines: list[str], rng: random.Random) -> bool:
    cands = [n for n, l in enumerate(lines) if l.startswith(("def ", "class "))]
    n = rng.choice(cands)
    name = rng.choice(["rms_norm", "norm", "stable_norm", "rmsnorm_f32", "unit_norm", "safe_norm"])
    eps = rng.choice(["1e-6", "1e-5", "1e-8"])
    helper = [line.replace("rms_norm", name).replace("1e-6", eps).replace("scale", f"scale_{name}") for line in _HELPER]
    helper[1] = f"    # {name}: parameter-free normalisation over the last dimension"
    lines[n:n] = helper
    return True


def edit_rename(lines: list[str], rng: random.Random) -> bool:
    defs = [n for n, l in enumerate(lines) if l.lstrip().startswith("def ")]
    start = rng.choice(defs)
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > _indent(lines[start])):
        end += 1
    names = sorted({m.group(1) for l in lines[start + 1 : end] if (m := re.match(r"\s+([a-z_]\w*) = ", l))})
    if not names:
        return False
    name = rng.choice(names)
    new = name + rng.choice(["_v2", "_acc", "_buf"])
    for k in range(start, end):
        lines[k] = re.sub(rf"\b{name}\b", new, lines[k])
    return True


def edit_trailing_ws(lines: list[str], rng: random.Random) -> bool:
    """A change that only adds (or removes) trailing whitespace on one line: it must land as written."""
    cands = [n for n, l in enumerate(lines) if l.strip()]
    n = rng.choice(cands)
    lines[n] = lines[n].rstrip() if lines[n] != lines[n].rstrip() else lines[n] + " " * rng.randint(1, 3)
    return True


EDITS = [edit_tweak_number, edit_insert, edit_delete, edit_modify_call, edit_add_function, edit_rename,
         edit_trailing_ws]


def synthetic_pairs(count: int, seed: int = 1234) -> list[Pair]:
    rng = random.Random(seed)
    text = BASE_SCRIPT
    pairs = []
    while len(pairs) < count:
        lines = text.split("\n")
        for _ in range(rng.randint(1, 4)):
            rng.choice(EDITS)(lines, rng)
        new = "\n".join(lines)
        if new != text:
            pairs.append(Pair(f"synthetic_{len(pairs)}→{len(pairs) + 1}", text, new))
            text = new
    return pairs


# ---------------------------------------------------------------------------------------------------------
# Blocks, rendering and perturbations


@dataclass
class Block:
    search: list[str]
    replace: list[str]


@dataclass
class Style:
    path_line: str | None = PATH  # the line before the fence (None: no path line)
    path_inside: bool = False  # put the path line inside the fence instead
    fence_open: str = "```python"
    fence_close: str | None = "```"  # None: missing closing fence
    one_fence: bool = False  # all blocks inside one fence
    chatter: bool = False
    crlf: bool = False
    marks: int = 7


@dataclass(frozen=True)
class Case:
    """One answer to evaluate: its text, tool calls, and the format the model was asked for."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    preferred: str = "auto"


def true_blocks(pair: Pair, context_lines: int = 1) -> list[Block]:
    text = blocks_from_texts(pair.old, pair.new, PATH, context_lines=context_lines)
    return [Block(_lines(h.search), _lines(h.replace)) for h in parse_edits(text, PATH).hunks]


def _lines(text: str) -> list[str]:
    return text.split("\n")[:-1] if text else []


def render(blocks: list[Block], style: Style, fences: list[tuple[str, str | None]] | None = None) -> str:
    lt, eq, gt = "<" * style.marks, "=" * style.marks, ">" * style.marks
    out: list[str] = []
    if style.chatter:
        out += [
            "Looking at the training loop, the step time is dominated by the attention and the optimizer.",
            "",
            f"Here are the changes to `{PATH}`:",
            "",
        ]
    for n, block in enumerate(blocks):
        fence_open, fence_close = fences[n] if fences else (style.fence_open, style.fence_close)
        first_in_fence = not style.one_fence or n == 0
        if first_in_fence:
            if style.path_line and not style.path_inside:
                out.append(style.path_line)
            out.append(fence_open)
            if style.path_line and style.path_inside:
                out.append(style.path_line)
        out += [f"{lt} SEARCH", *block.search, eq, *block.replace, f"{gt} REPLACE"]
        last_in_fence = not style.one_fence or n == len(blocks) - 1
        if last_in_fence and fence_close is not None:
            out.append(fence_close)
        if style.chatter and n < len(blocks) - 1:
            out += ["", "Next, a related change further down:", ""]
        elif last_in_fence:
            out.append("")
    if style.chatter:
        out += ["", "This should cut the time to target; the loss curve should be unchanged early on.", ""]
    text = "\n".join(out)
    return text.replace("\n", "\r\n") if style.crlf else text


def _unchanged_rows(block: Block) -> list[tuple[int, int]]:
    sm = difflib.SequenceMatcher(None, block.search, block.replace, autojunk=False)
    return [(b.a + k, b.b + k) for b in sm.get_matching_blocks() for k in range(b.size)]


def _mutate(line: str, rng: random.Random) -> str:
    digits = [m.start() for m in re.finditer(r"\d", line)]
    if digits and rng.random() < 0.6:
        k = rng.choice(digits)
        return line[:k] + str((int(line[k]) + 1) % 10) + line[k + 1 :]
    words = [m for m in re.finditer(r"[A-Za-z_]{4,}", line)]
    if words and rng.random() < 0.6:
        m = rng.choice(words)
        return line[: m.end()] + "s" + line[m.end() :]
    return line + "  # old"


Perturb = Callable[[Pair, random.Random], "Case | str | None"]


def p_none(pair: Pair, rng: random.Random) -> str:
    return render(true_blocks(pair), Style())


def _shifted(blocks: list[Block], shift: Callable[[str], str]) -> list[Block]:
    return [Block([shift(l) for l in b.search], [shift(l) for l in b.replace]) for b in blocks]


def p_indent_minus4(pair: Pair, rng: random.Random) -> str | None:
    """Every block dedented by 4 spaces (blocks that cannot be are left as they are)."""
    out, done = [], False
    for b in true_blocks(pair):
        nonblank = [l for l in b.search + b.replace if l.strip()]
        if nonblank and all(l.startswith("    ") for l in nonblank):
            out += _shifted([b], lambda l: l[4:] if l.strip() else l)
            done = True
        else:
            out.append(b)
    return render(out, Style()) if done else None


def p_indent_plus4(pair: Pair, rng: random.Random) -> str:
    return render(_shifted(true_blocks(pair), lambda l: "    " + l if l.strip() else l), Style())


def p_indent_to_column_0(pair: Pair, rng: random.Random) -> str:
    blocks = []
    for b in true_blocks(pair):
        nonblank = [l for l in b.search + b.replace if l.strip()]
        low = min((_indent(l) for l in b.search if l.strip()), default=0)
        if low >= 4 and all(_indent(l) >= low for l in nonblank):
            blocks += _shifted([b], lambda l, low=low: l[low:] if l.strip() else l)
        else:
            blocks += _shifted([b], lambda l: "    " + l if l.strip() else l)
    return render(blocks, Style())


def _spaces(rng: random.Random) -> str:
    return " " * rng.randint(1, 3)


def p_trailing_spaces(pair: Pair, rng: random.Random) -> str:
    """The model copies lines with stray trailing spaces: on SEARCH lines, and identically on the REPLACE copies
    of the lines it keeps. The lines it changes are the truth."""
    blocks = []
    for b in true_blocks(pair):
        s, r = list(b.search), list(b.replace)
        kept = dict(_unchanged_rows(b))
        for i, line in enumerate(s):
            if line.strip() and rng.random() < 0.4:
                pad = _spaces(rng)
                if i not in kept and line + pad in b.replace:
                    continue  # would turn a real trailing-whitespace change into "unchanged"
                s[i] = line + pad
                if i in kept:
                    r[kept[i]] = r[kept[i]] + pad
        if s == b.search:
            k = next(i for i, l in enumerate(s) if l.strip())
            s[k] += " "
            if k in kept:
                r[kept[k]] += " "
        blocks.append(Block(s, r))
    return render(blocks, Style())


def _pad_search(b: Block, rng: random.Random, share: float) -> list[str]:
    """SEARCH lines with stray trailing spaces, never making a line equal to a REPLACE line it differs from
    (that would turn a real trailing-whitespace change into "unchanged": no engine could tell)."""
    replace = set(b.replace)
    out = []
    for line in b.search:
        padded = line + _spaces(rng)
        out.append(padded if line.strip() and rng.random() < share and padded not in replace else line)
    if out == b.search:
        for k, line in enumerate(out):
            if line.strip() and line + " " not in replace:
                out[k] = line + " "
                break
    return out


def p_trailing_spaces_search(pair: Pair, rng: random.Random) -> str:
    """Stray trailing spaces on SEARCH lines only; REPLACE is the truth."""
    return render([Block(_pad_search(b, rng, 0.4), b.replace) for b in true_blocks(pair)], Style())


ELISION = "# ... existing code ..."


def p_elided_context(pair: Pair, rng: random.Random) -> str | None:
    blocks = true_blocks(pair, context_lines=4)
    done = False
    out = []
    for b in blocks:
        rows = _unchanged_rows(b)
        runs: list[list[tuple[int, int]]] = []
        for row in rows:
            if runs and row == (runs[-1][-1][0] + 1, runs[-1][-1][1] + 1):
                runs[-1].append(row)
            else:
                runs.append([row])
        # Keep the first and last line of the block as anchors; elide 2+ unchanged lines between them.
        inner = []
        for r in runs:
            r = [row for row in r if 1 <= row[0] <= len(b.search) - 2 and 1 <= row[1] <= len(b.replace) - 2]
            if len(r) >= 2:
                inner.append(r)
        if not inner:
            out.append(b)
            continue
        run = max(inner, key=len)
        (s0, r0), (s1, r1) = run[0], run[-1]
        marker = " " * _indent(b.search[s0]) + ELISION
        search = b.search[:s0] + [marker] + b.search[s1 + 1 :]
        out.append(Block(search, b.replace[:r0] + [marker] + b.replace[r1 + 1 :]))
        done = True
    return render(out, Style()) if done else None


def p_stale_context_line(pair: Pair, rng: random.Random) -> str | None:
    blocks = true_blocks(pair)
    options = [(n, rows) for n, b in enumerate(blocks) for rows in _unchanged_rows(b) if b.search[rows[0]].strip()]
    if not options:
        return None
    n, (si, ri) = rng.choice(options)
    b = blocks[n]
    stale = _mutate(b.search[si], rng)
    blocks[n] = Block(b.search[:si] + [stale] + b.search[si + 1 :], b.replace[:ri] + [stale] + b.replace[ri + 1 :])
    return render(blocks, Style())


def p_stale_changed_line(pair: Pair, rng: random.Random) -> str | None:
    blocks = true_blocks(pair)
    options = []
    for n, b in enumerate(blocks):
        kept = {si for si, _ in _unchanged_rows(b)}
        options += [(n, si) for si in range(len(b.search)) if si not in kept and b.search[si].strip()]
    if not options:
        return None
    n, si = rng.choice(options)
    b = blocks[n]
    blocks[n] = Block(b.search[:si] + [_mutate(b.search[si], rng)] + b.search[si + 1 :], b.replace)
    return render(blocks, Style())


def p_crlf(pair: Pair, rng: random.Random) -> str:
    return render(true_blocks(pair), Style(crlf=True))


def p_wrong_fence(pair: Pair, rng: random.Random) -> str:
    blocks = true_blocks(pair)
    fences = [
        (
            rng.choice(["```", "```py", "```python3", "```diff", "~~~python", "````text"]),
            rng.choice([None, "~~~", "````", "```"]),
        )
        for _ in blocks
    ]
    return render(blocks, Style(), fences)


def p_path_missing(pair: Pair, rng: random.Random) -> str:
    return render(true_blocks(pair), Style(path_line=None))


def p_path_inside_fence(pair: Pair, rng: random.Random) -> str:
    return render(true_blocks(pair), Style(path_inside=True, one_fence=rng.random() < 0.5))


def p_chatter(pair: Pair, rng: random.Random) -> str:
    path = rng.choice([f"**{PATH}**", f"`{PATH}`", f"File: {PATH}", f"### {PATH}", PATH])
    return render(true_blocks(pair), Style(chatter=True, path_line=path, marks=rng.choice([5, 7, 9])))


def p_unified_diff(pair: Pair, rng: random.Random) -> str:
    diff = difflib.unified_diff(
        pair.old.splitlines(), pair.new.splitlines(), f"a/{PATH}", f"b/{PATH}", n=rng.choice([1, 2, 3]), lineterm=""
    )
    return "I changed the script as follows.\n\n```diff\n" + "\n".join(diff) + "\n```\n"


def p_codex_patch(pair: Pair, rng: random.Random) -> Case:
    """The true blocks as a *** Begin Patch envelope, each chunk with the nearest def/class line above it as its
    '@@' anchor (sometimes none)."""
    old = pair.old.splitlines()
    out = ["I will patch the script.", "", "*** Begin Patch", f"*** Update File: {PATH}"]
    for b in true_blocks(pair, context_lines=rng.choice([1, 2, 3])):
        start = next((i for i in range(len(old)) if old[i : i + len(b.search)] == b.search), 0)
        anchor = next((old[k].strip() for k in range(start - 1, -1, -1)
                       if old[k].lstrip().startswith(("def ", "class "))), "")
        out.append(f"@@ {anchor}" if anchor and rng.random() < 0.7 else "@@")
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, b.search, b.replace, autojunk=False).get_opcodes():
            if tag == "equal":
                out += [" " + l for l in b.search[i1:i2]]
            else:
                out += ["-" + l for l in b.search[i1:i2]] + ["+" + l for l in b.replace[j1:j2]]
    out += ["*** End Patch", ""]
    return Case("\n".join(out), preferred="patch")


def p_whole_file(pair: Pair, rng: random.Random) -> Case:
    fence = "````" if "```" in pair.new else "```"
    body = pair.new if pair.new.endswith("\n") else pair.new + "\n"
    return Case(f"Here is the whole updated script.\n\n{PATH}\n{fence}python\n{body}{fence}\n", preferred="whole")


def p_tool_calls(pair: Pair, rng: random.Random) -> Case:
    """edit_file calls: old/new strings from the true blocks, sometimes trimmed to the changed substring."""
    import json

    calls = []
    for b in true_blocks(pair):
        old, new = "\n".join(b.search), "\n".join(b.replace)
        if rng.random() < 0.5:
            k = 0
            while k < min(len(old), len(new)) and old[k] == new[k]:
                k += 1
            cut = old.rfind("\n", 0, k) + 1
            if old[cut:].strip() and pair.old.count(old[cut:]) == 1:  # a model sends a unique old_string
                old, new = old[cut:], new[cut:]
        calls.append(ToolCall("edit_file", json.dumps({"path": PATH, "old_string": old, "new_string": new})))
    return Case("Two small edits.", tuple(calls), preferred="tools")


def p_all_at_once(pair: Pair, rng: random.Random) -> str:
    text = p_indent_to_column_0(pair, rng)
    parsed = parse_edits(text, PATH)
    blocks = [Block(_lines(h.search), _lines(h.replace)) for h in parsed.hunks]
    for b in blocks:
        b.search = _pad_search(b, rng, 0.3)
    fences = [(rng.choice(["```", "```py"]), rng.choice([None, "```"])) for _ in blocks]
    return render(blocks, Style(path_line=None, chatter=True, crlf=True), fences)


PERTURBATIONS: dict[str, tuple[Perturb, str]] = {
    "none": (p_none, "the true SEARCH/REPLACE blocks, well formed"),
    "indent_minus4": (p_indent_minus4, "every block dedented by 4 spaces"),
    "indent_plus4": (p_indent_plus4, "every block indented by 4 more spaces"),
    "indent_to_column_0": (p_indent_to_column_0, "every block dedented to column 0 (or +4 when at column 0)"),
    "trailing_spaces": (
        p_trailing_spaces, "stray trailing spaces on SEARCH lines and on REPLACE's copies of the lines it keeps"
    ),
    "trailing_spaces_search": (p_trailing_spaces_search, "stray trailing spaces on SEARCH lines only"),
    "elided_context": (
        p_elided_context, "4 lines of context, an inner unchanged run replaced by '# ... existing code ...'"
    ),
    "stale_context_line": (p_stale_context_line, "one unchanged line of SEARCH/REPLACE is an older version"),
    "stale_changed_line": (p_stale_changed_line, "a line REPLACE changes differs in the file (must be refused)"),
    "crlf": (p_crlf, "the whole answer with CRLF line endings"),
    "wrong_fence": (p_wrong_fence, "odd fence tags, wrong or missing closing fences"),
    "path_missing": (p_path_missing, "no path line (the default path applies)"),
    "path_inside_fence": (p_path_inside_fence, "path inside the fence, sometimes all blocks in one fence"),
    "chatter": (p_chatter, "rationale before/between/after, decorated path lines, 5/7/9 marker characters"),
    "unified_diff": (p_unified_diff, "a unified diff (1–3 context lines) instead of blocks"),
    "codex_patch": (p_codex_patch, "a *** Begin Patch envelope with '@@ def …' anchors"),
    "whole_file": (p_whole_file, "the whole new file in one fenced block"),
    "tool_calls": (p_tool_calls, "edit_file tool calls, half of them with substring old/new strings"),
    "all_at_once": (p_all_at_once, "indent drift + trailing spaces + CRLF + odd fences + no path + chatter"),
}
MUST_REFUSE = {"stale_changed_line"}


# ---------------------------------------------------------------------------------------------------------
# Running


@dataclass
class Tally:
    cases: int = 0
    correct: int = 0
    refused: int = 0
    wrong: int = 0
    not_applicable: int = 0
    seconds: float = 0.0
    wrong_examples: list[str] = field(default_factory=list)


def run_case(pair: Pair, case: Case) -> tuple[str, float, str]:
    start = time.perf_counter()
    verdict = evaluate_answer(ModelAnswer(case.text, case.tool_calls), {PATH: pair.old}, default_path=PATH,
                              preferred=case.preferred)
    elapsed = time.perf_counter() - start
    if not verdict.ok:
        return "refused", elapsed, verdict.error or ""
    return ("correct" if verdict.files == {PATH: pair.new} else "wrong"), elapsed, ""


def run(pairs: list[Pair], seeds: int, verbose: bool) -> dict[str, Tally]:
    tallies = {name: Tally() for name in PERTURBATIONS}
    for name, (perturb, _) in PERTURBATIONS.items():
        tally = tallies[name]
        for pair in pairs:
            for seed in range(seeds):
                rng = random.Random(f"{name}/{pair.name}/{seed}")
                made = perturb(pair, rng)
                if made is None:
                    tally.not_applicable += 1
                    continue
                case = made if isinstance(made, Case) else Case(made)
                outcome, seconds, why = run_case(pair, case)
                tally.cases += 1
                tally.seconds += seconds
                setattr(tally, outcome, getattr(tally, outcome) + 1)
                if outcome == "wrong":
                    tally.wrong_examples.append(f"{pair.name} seed {seed}")
                    if verbose:
                        print(f"--- WRONG: {name} {pair.name} seed {seed}\n{case.text}", file=sys.stderr)
                elif outcome == "refused" and verbose and name not in MUST_REFUSE:
                    print(f"--- refused: {name} {pair.name} seed {seed}: {why}", file=sys.stderr)
    return tallies


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}% ({part})" if whole else "–"


def table(tallies: dict[str, Tally]) -> str:
    rows = [
        "| perturbation | cases | applied correctly | refused | wrongly applied | ms/case |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, t in tallies.items():
        ms = f"{1000 * t.seconds / t.cases:.1f}" if t.cases else "–"
        na = f" (+{t.not_applicable} n/a)" if t.not_applicable else ""
        rows.append(
            f"| {name} | {t.cases}{na} | {_pct(t.correct, t.cases)} | {_pct(t.refused, t.cases)} | "
            f"{_pct(t.wrong, t.cases)} | {ms} |"
        )
    total = Tally()
    for t in tallies.values():
        total.cases += t.cases
        total.wrong += t.wrong
    rows.append(f"\nWrongly applied over all {total.cases} cases: **{total.wrong}**.")
    return "\n".join(rows)


NOTES = """## Why cases are refused

- `stale_changed_line` is refused by design: the file differs from SEARCH on a line that REPLACE changes, so
  the model's edit was made against a text that is not there (three-way merge conflict).
- `stale_context_line`: a SEARCH with only one non-blank line is never matched fuzzily (too easy to put in the
  wrong place); blocks of 2+ lines are merged three-way and keep the file's version of the stale line. A stale
  line the model also changed, or a block whose other lines are too generic to place, is refused.
- `elided_context`: a part between `...` lines that fits several places is refused unless every placement gives
  the same text.
- `unified_diff`, `codex_patch`: with 1 line of context a hunk can match several places; line numbers in `@@`
  headers are not used to break ties (the patch format's `@@ def …` anchors are).
- The whitespace rule: tolerances only widen *where* a block matches. Lines REPLACE keeps exactly as SEARCH had
  them keep the file's text; lines it changes are written as REPLACE has them, trailing whitespace included.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=Path, default=REPO / "records" / "micro", help="micro ladder folder")
    parser.add_argument("--nanogpt", type=Path, default=None, help="a modded-nanogpt clone (work tree)")
    parser.add_argument("--nanogpt-seeds", type=int, default=3, help="perturbation seeds per nanogpt transition")
    parser.add_argument("--pairs", type=Path, default=None, help="folder of old/new pairs")
    parser.add_argument("--synthetic", type=int, default=12, help="synthetic transitions (a chain of edits)")
    parser.add_argument("--make-pairs", type=Path, default=None, help="also write the synthetic pairs here")
    parser.add_argument("--seeds", type=int, default=5, help="perturbation seeds per transition")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "edit-apply.md")
    parser.add_argument("--no-write", action="store_true", help="print the tables only")
    parser.add_argument("--verbose", action="store_true", help="print wrongly applied and refused cases")
    opts = parser.parse_args(argv)

    groups: list[tuple[str, list[Pair], int]] = []
    ladder = ladder_pairs(opts.records) if opts.records.is_dir() else []
    if ladder:
        groups.append((f"micro ladder ({len(ladder)} transitions: {', '.join(p.name for p in ladder)})", ladder,
                       opts.seeds))
    if opts.nanogpt:
        real = nanogpt_pairs(opts.nanogpt)
        groups.append((f"modded-nanogpt records ({len(real)} consecutive transitions with code, {real[0].name} … "
                       f"{real[-1].name})" if real else "modded-nanogpt records (none)", real, opts.nanogpt_seeds))
    if opts.pairs:
        groups.append((f"pairs from {opts.pairs}", dir_pairs(opts.pairs), opts.seeds))
    synthetic = opts.synthetic or (0 if ladder or opts.pairs else 8)
    if opts.make_pairs:
        for pair in synthetic_pairs(synthetic or 8):
            folder = opts.make_pairs / pair.name.replace("→", "_to_")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "old.py").write_text(pair.old)
            (folder / "new.py").write_text(pair.new)
        print(f"wrote {synthetic or 8} synthetic old/new pairs under {opts.make_pairs}")
    if synthetic:
        groups.append((f"synthetic chain ({synthetic} transitions of 1–4 edits to a ~290-line script)",
                       synthetic_pairs(synthetic), opts.seeds))

    sections = []
    wrong_total = 0
    for title, pairs, seeds in groups:
        tallies = run(pairs, seeds, opts.verbose)
        wrong_total += sum(t.wrong for t in tallies.values())
        block = f"### {title}, {seeds} seeds each\n\n{table(tallies)}"
        print(block + "\n")
        sections.append(block)
    if not opts.no_write:
        command = "".join(" " + arg for arg in (sys.argv[1:] if argv is None else argv))
        legend = "\n".join(f"- `{name}`: {desc}" for name, (_, desc) in PERTURBATIONS.items())
        commit = _commit()
        doc = (
            "# Applying model edits: robustness benchmark\n\n"
            f"Measured {dt.date.today().isoformat()} at commit {commit} with `python bench/edit_apply.py{command}` "
            "(copilot/core/edits/). Each case: the true change of one transition written in an edit format, "
            "perturbed, and evaluated by `edits.evaluate_answer` — the one entry point the app, the agent and "
            "`speedcopilot edits apply` use (parse, apply all or nothing, content checks, compile check). "
            "*Applied correctly* = byte-identical to the next version; *refused* = a rejected verdict (the model "
            "would be asked again); *wrongly applied* = a different text and no refusal, which must be 0. Cases "
            "marked n/a had nothing to perturb (e.g. no block with an inner unchanged run to elide).\n\n"
            f"{legend}\n\n" + "\n\n".join(sections) + "\n\n" + NOTES
        )
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(doc)
        print(f"wrote {opts.out}")
    return 1 if wrong_total else 0


def _commit() -> str:
    import subprocess

    try:
        sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "copilot"], capture_output=True,
                               text=True).stdout.strip()
        return sha + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
