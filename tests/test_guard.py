"""Integrity guard on nanogpt-shaped and micro-shaped scripts (our own small stand-ins with the same anatomy)."""

from __future__ import annotations

import pytest

from copilot.core.edits.guard import BLOCK, WARN, check_integrity, protected_blocks, timer_gap_flag

NANOGPT = '''import os
import time
import torch

class Hyperparameters:
    data_path = os.environ.get("DATA_PATH", ".")
    train_files = os.path.join(data_path, "data/fineweb10B/fineweb_train_*.bin")
    val_files = os.path.join(data_path, "data/fineweb10B/fineweb_val_*.bin")
    val_tokens = 10485760
    lr = 0.02
    num_iterations = 1390

args = Hyperparameters()

def evaluate(model, loader, val_steps):
    model.eval()
    val_loss = 0.0
    with torch.no_grad():
        for _ in range(val_steps):
            val_loss += model(next(loader))
    val_loss /= val_steps
    return val_loss

training_time_ms = 0
torch.cuda.synchronize()
t0 = time.perf_counter()
for step in range(args.num_iterations + 1):
    if step % 250 == 0:
        torch.cuda.synchronize()
        training_time_ms += 1000 * (time.perf_counter() - t0)
        val_loss = evaluate(model, val_loader, args.val_tokens // 65536)
        print0(f"step:{step}/{args.num_iterations} val_loss:{val_loss:.4f} train_time:{training_time_ms:.0f}ms step_avg:{training_time_ms/max(step, 1):.2f}ms", console=True)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
    loss = model(next(train_loader))
    loss.backward()
    opt.step()
    approx_training_time_ms = training_time_ms + 1000 * (time.perf_counter() - t0)
    print0(f"step:{step+1}/{args.num_iterations} train_time:{approx_training_time_ms:.0f}ms step_avg:{approx_training_time_ms/(step + 1):.2f}ms", console=True)
'''

MICRO = '''import torch

# ---- DO NOT CHANGE: validation set and target (the guard refuses edits here) ----
VAL_SEED = 2
VAL_WINDOWS = 64
TARGET_VAL_LOSS = 1.30
# ---- end of do-not-change block ----

LR = 3e-3
STEPS = 170
'''


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def kinds(report) -> set[tuple[str, str]]:
    return {(f.kind, f.severity) for f in report.findings}


def test_unchanged_and_benign_edits_pass() -> None:
    assert check_integrity(NANOGPT, NANOGPT, "nanogpt").findings == []
    changed = edit(NANOGPT, "    lr = 0.02", "    lr = 0.03\n    momentum = 0.95")
    changed = edit(changed, "    opt.step()", "    opt.step()\n    opt.zero_grad(set_to_none=True)  # cheaper")
    report = check_integrity(NANOGPT, changed, "nanogpt")
    assert report.findings == [] and not report.blocking
    assert report.summary() == "no protected part touched"


def test_moved_lines_and_comments_are_not_findings() -> None:
    moved = edit(NANOGPT, "    val_tokens = 10485760\n    lr = 0.02\n", "    lr = 0.02\n    val_tokens = 10485760  \n")
    moved = edit(moved, "args = Hyperparameters()", "# a comment about val_tokens and train_time\nargs = Hyperparameters()")
    assert check_integrity(NANOGPT, moved).findings == []


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ("    val_tokens = 10485760", "    val_tokens = 1048576", "val_tokens"),
        ('"data/fineweb10B/fineweb_train_*.bin")', '"data/fineweb10B/fineweb_val_*.bin")', "data"),
        ("val_loss:{val_loss:.4f}", "val_loss:{val_loss - 0.01:.4f}", "log_format"),
        ("train_time:{training_time_ms:.0f}ms step_avg", "train_time:{training_time_ms * 0.9:.0f}ms step_avg", "log_format"),
        ("        training_time_ms += 1000 * (time.perf_counter() - t0)\n",
         "        training_time_ms += 500 * (time.perf_counter() - t0)\n", "timer"),
    ],
)
def test_protected_edits_block(old: str, new: str, kind: str) -> None:
    report = check_integrity(NANOGPT, edit(NANOGPT, old, new), "nanogpt")
    assert report.blocking
    assert (kind, BLOCK) in kinds(report)
    removed = [f for f in report.findings if f.where == "base" and f.severity == BLOCK]
    assert removed or kind == "timer"
    for f in removed:  # the finding points at the base line that held the protected fact
        assert f.text.replace(" ", "") in NANOGPT.splitlines()[f.line - 1].replace(" ", "")


def test_clock_and_train_line_edits_warn() -> None:
    # dropping a synchronize or reshaping the per-step train line is suspicious but not proof: a warning
    text = edit(NANOGPT, "        torch.cuda.synchronize()\n        t0 = time.perf_counter()\n", "        t0 = time.perf_counter()\n")
    report = check_integrity(NANOGPT, text)
    assert kinds(report) == {("timer", WARN)} and not report.blocking
    text = edit(NANOGPT, "step_avg:{approx_training_time_ms/(step + 1):.2f}ms", "avg:{approx_training_time_ms/(step + 1):.2f}ms")
    report = check_integrity(NANOGPT, text)
    assert kinds(report) == {("log_format", WARN)}
    # a comment-only change on a protected line is nothing
    text = edit(NANOGPT, "    val_tokens = 10485760", "    val_tokens = 10485760  # keep fixed")
    assert check_integrity(NANOGPT, text).findings == []


def test_added_lines_that_rewrite_measurements_block() -> None:
    text = edit(NANOGPT, "    loss.backward()", "    loss.backward()\n    training_time_ms -= 5.0")
    report = check_integrity(NANOGPT, text)
    finding = next(f for f in report.findings if f.kind == "timer")
    assert finding.severity == BLOCK and finding.where == "new" and text.splitlines()[finding.line - 1].strip() == finding.text

    text = edit(NANOGPT, "import torch\n", "import torch\ntorch._inductor.config.coordinate_descent_tuning = True\n")
    assert ("compile_flags", BLOCK) in kinds(check_integrity(NANOGPT, text))


def test_validation_routine_changes() -> None:
    # a different reduction of the val loss rewrites the metric: blocking
    text = edit(NANOGPT, "    val_loss /= val_steps", "    val_loss /= val_steps * 1.01")
    report = check_integrity(NANOGPT, text)
    assert report.blocking and {k for k, _ in kinds(report)} == {"validation"}
    # touching the loop without reassigning the measured values is only a warning
    text = edit(NANOGPT, "    with torch.no_grad():", "    with torch.inference_mode():")
    report = check_integrity(NANOGPT, text)
    assert report.findings and not report.blocking and kinds(report) == {("validation", WARN)}


def test_micro_do_not_change_block() -> None:
    blocks = protected_blocks(MICRO)
    assert len(blocks) == 1 and blocks[0][0] == 4 and "TARGET_VAL_LOSS = 1.30" in blocks[0][1]
    assert check_integrity(MICRO, edit(MICRO, "LR = 3e-3", "LR = 1e-2"), "micro").findings == []
    report = check_integrity(MICRO, edit(MICRO, "TARGET_VAL_LOSS = 1.30", "TARGET_VAL_LOSS = 1.50"), "micro")
    assert report.blocking and ("protected_block", BLOCK) in kinds(report)
    finding = next(f for f in report.findings if f.kind == "protected_block")
    assert finding.text == "TARGET_VAL_LOSS = 1.50" and finding.line == 6
    unfenced = "\n".join(l for l in MICRO.splitlines() if "DO NOT CHANGE" not in l) + "\n"
    assert check_integrity(MICRO, unfenced, "micro").blocking
    assert check_integrity(MICRO, edit(MICRO, "VAL_WINDOWS = 64", "VAL_WINDOWS = 8"), "micro").blocking


def test_timer_gap_flag() -> None:
    assert timer_gap_flag(None, 1000.0) is None and timer_gap_flag(100.0, None) is None
    assert timer_gap_flag(100.0, 80_000.0) is None  # validation + warm-up gap is normal
    assert timer_gap_flag(520.0, 80_000.0) is None  # a first run with ~7 min of compile
    assert "timer is wrong" in timer_gap_flag(60.0, 80_000.0)
    flag = timer_gap_flag(2000.0, 80_000.0)
    assert flag is not None and "ran untimed" in flag and "4%" in flag
    assert timer_gap_flag(100.0, 10_000.0, allowance_s=30.0) is not None  # a micro-sized allowance


def test_machine_specific_data_folder_and_accumulator_reset_pass() -> None:
    # a different folder for the same shard files is a machine detail, not a different token stream
    text = edit(NANOGPT, '"data/fineweb10B/fineweb_train_*.bin")', '"/mnt/shards/fineweb10B/fineweb_train_*.bin")')
    report = check_integrity(NANOGPT, text)
    assert not report.blocking and {k for k, _ in kinds(report)} == {"data"}
    # re-initialising the accumulator is ordinary validation code
    text = edit(NANOGPT, "    val_loss = 0.0\n", "    val_loss = 0\n")
    assert not check_integrity(NANOGPT, text).blocking
    text = edit(NANOGPT, "    val_loss = 0.0\n", "    val_loss = 3.1\n")
    assert check_integrity(NANOGPT, text).blocking
