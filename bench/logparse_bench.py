"""Log-parsing throughput on a realistic mix of upstream log lines.

Usage: python bench/logparse_bench.py [--lines 1000000] [--chunk 65536] [--repeat 3]

The generated log looks like a real record log: the training script's source as a header (code lines, many
of them mentioning `step`), the version banner and an nvidia-smi table, then per-step train lines in the
current format with a val line every 250 steps, plus some warnings; 1 run in 10 uses an older era (train_loss
lines, nan step_avg, track-3 seconds, llm.c template, llm.c `s:` lines, rank prefixes). The text is fed to
LogParser in fixed-size chunks, as watch_run does while tailing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from copilot.core.runs.logparse import LogParser  # noqa: E402

LOAD_BEFORE = "?"
CODE_LINES = [
    "import os",
    "import torch",
    "    def forward(self, x: Tensor, step: int):",
    "        for step in range(train_steps + 1):",
    "            last_step = (step == train_steps)",
    "        if last_step or (args.val_loss_every > 0 and step % args.val_loss_every == 0):",
    '            print0(f"step:{step}/{train_steps} val_loss:{val_loss:.4f} train_time:{training_time_ms:.0f}ms", console=True)',
    "        x = norm(x)",
    "        q, k, v = self.qkv(x).chunk(3, dim=-1)",
    "    model: nn.Module = GPT(vocab_size=50257, num_layers=11, model_dim=768)",
    "# -----------------------------------------------------------------------------",
    "",
    "        return F.cross_entropy(logits.float(), target_seq, reduction='sum' if self.training else 'mean')",
    "class Muon(torch.optim.Optimizer):",
    "    for group in self.param_groups:",
    "            momentum_buffer.lerp_(grad, 1 - group['momentum'])",
]
BANNER = [
    "=" * 100,
    "Running Python 3.12.3 (main, Nov  6 2024, 18:32:19) [GCC 13.2.0]",
    "Running PyTorch 2.10.0+cu128 compiled for CUDA 12.8",
    "Running Triton version 3.6.0",
    "Thu Jul 17 10:00:00 2026",
    "+-----------------------------------------------------------------------------------------+",
    "| NVIDIA-SMI 570.124.06             Driver Version: 570.124.06     CUDA Version: 12.8     |",
    "|   0  NVIDIA H100 80GB HBM3          On  |   00000000:61:00.0 Off |                    0 |",
    "| N/A   31C    P0            118W /  700W |    5768MiB /  81559MiB |      0%      Default |",
    "=" * 100,
    "Compiling model and warming up kernels (~7 minutes on first execution)",
    "Sampling steps [1, 2, 3] for warmup",
    "Resetting Model",
]
WARNINGS = [
    "/usr/lib/python3/dist-packages/torch/_inductor/compile_fx.py:194: UserWarning: TensorFloat32 tensor cores",
    "W1126 17:15:00.123000 1234 torch/distributed/run.py:793] Setting OMP_NUM_THREADS environment variable",
]


def current_era(steps: int, rng: random.Random) -> list[str]:
    lines: list[str] = []
    t = 0.0
    for step in range(steps + 1):
        if step % 250 == 0 or step == steps:
            loss = 4.0 - 0.7 * step / steps + rng.random() * 0.01
            lines.append(f"step:{step}/{steps} val_loss:{loss:.4f} train_time:{t:.0f}ms step_avg:{t / max(step, 1):.2f}ms")
        if step == steps:
            break
        t += 57.2 + rng.random()
        lines.append(f"step:{step + 1}/{steps} train_time:{t:.0f}ms step_avg:{t / (step + 1):.2f}ms")
        if rng.random() < 0.002:
            lines.append(rng.choice(WARNINGS))
    lines.append("peak memory allocated: 30220 MiB reserved: 38672 MiB")
    return lines


def old_era(steps: int, rng: random.Random) -> list[str]:
    lines: list[str] = []
    t = 0.0
    for step in range(steps):
        t += 215.0 + rng.random()
        kind = step % 5
        loss = 4.5 - step / steps
        if kind == 0:
            avg = "nan" if step < 10 else f"{t / (step + 1):.2f}"
            lines.append(f"step:{step + 1}/{steps} train_loss:{loss:.4f} train_time:{t:.0f}ms step_avg:{avg}ms")
        elif kind == 1:
            lines.append(f"step:{step + 1}/{steps} val_loss:{loss:.5f} train_time:{t / 1000:.3f}s step_avg:215.00ms")
        elif kind == 2:
            lines.append(
                f"step {step + 1:4d}/{steps} | train loss {loss:.6f} | norm 0.8123 | lr 1.80e-03 | (215.31 ms | 2435000 tok/s)"
            )
        elif kind == 3:
            lines.append(f"s:{step} trl:{loss:.6f}")
        else:
            lines.append(f"[rank0]:step:{step + 1}/{steps} train_time:{t:.0f}ms step_avg:{t / (step + 1):.2f}ms")
    lines.append("peak memory consumption: 12000 MiB")
    return lines


def generate(total: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines: list[str] = []
    run = 0
    while len(lines) < total:
        lines.extend(rng.choice(CODE_LINES) for _ in range(1500))
        lines.extend(BANNER)
        lines.extend(old_era(1390, rng) if run % 10 == 9 else current_era(1390, rng))
        run += 1
    return "\n".join(lines[:total]) + "\n"


def bench(text: str, chunk: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, metric points)."""
    parser = LogParser(keep_points=False)
    points = 0
    cpu = time.process_time()
    start = time.perf_counter()
    for offset in range(0, len(text), chunk):
        points += len(parser.feed(text[offset : offset + chunk]))
    points += len(parser.flush())
    return time.perf_counter() - start, time.process_time() - cpu, points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=65536, help="bytes per feed() call")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    global LOAD_BEFORE
    LOAD_BEFORE = f"{os.getloadavg()[0]:.2f}"
    text = generate(args.lines)
    n_lines = text.count("\n")
    walls, cpus = [], []
    points = 0
    for _ in range(args.repeat):
        elapsed, cpu, points = bench(text, args.chunk)
        walls.append(elapsed)
        cpus.append(cpu)
    print(f"lines: {n_lines:,}  bytes: {len(text):,}  metric points: {points:,}  chunk: {args.chunk} B")
    for name, times in (("wall", walls), ("CPU", cpus)):
        best, median = min(times), statistics.median(times)
        print(f"{name:4s}: best {best:.3f} s = {n_lines / best:,.0f} lines/s; "
              f"median {median:.3f} s = {n_lines / median:,.0f} lines/s")
    print(f"load average before/after: {LOAD_BEFORE} / {os.getloadavg()[0]:.2f} (the machine may be shared)")


if __name__ == "__main__":
    main()
