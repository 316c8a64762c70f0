"""crash_summary on captured torchrun outputs (written by us in the formats torchrun and Python print)."""

from __future__ import annotations

import sys
from pathlib import Path

from copilot.core.runs import LocalRunner, Outcome, RunResult, RunSpec, new_run_id, watch_run
from copilot.core.runs.base import error_tail, summarize
from copilot.core.runs.crash import crash_summary
from copilot.core.runs.logparse import LogParser

FRAME = "=" * 60
DASH = "-" * 60


def torchrun_block(root_rank: int, exitcode: int = 1, other_ranks: tuple[int, ...] = (),
                   detail: str = "To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html") -> list[str]:
    """torchrun's own traceback and its framed Failures / Root Cause summary."""
    lines = [
        f"E1201 10:00:05.000000 4242 torch/distributed/elastic/multiprocessing/api.py:874] failed (exitcode: {exitcode}) "
        f"local_rank: {root_rank} (pid: 5000) of binary: /venv/bin/python3",
        "Traceback (most recent call last):",
        '  File "/venv/bin/torchrun", line 8, in <module>',
        "    sys.exit(main())",
        "             ^^^^^^",
        '  File "/venv/lib/python3.12/site-packages/torch/distributed/run.py", line 919, in main',
        "    run(args)",
        '  File "/venv/lib/python3.12/site-packages/torch/distributed/launcher/api.py", line 269, in launch_agent',
        "    raise ChildFailedError(",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
        FRAME,
        "train_gpt.py FAILED",
        DASH,
        "Failures:",
    ]
    if other_ranks:
        for rank in other_ranks:
            lines += [f"[{rank}]:", "  time      : 2026-12-01_10:00:05", "  host      : gpu-box",
                      f"  rank      : {rank} (local_rank: {rank})", f"  exitcode  : 1 (pid: {5000 + rank})",
                      "  error_file: <N/A>", f"  traceback : {detail}"]
    else:
        lines.append("  <NO_OTHER_FAILURES>")
    lines += [DASH, "Root Cause (first observed failure):", f"[{root_rank}]:", "  time      : 2026-12-01_10:00:04",
              "  host      : gpu-box", f"  rank      : {root_rank} (local_rank: {root_rank})",
              f"  exitcode  : {exitcode} (pid: 5000)", "  error_file: <N/A>", f"  traceback : {detail}", FRAME]
    return lines


def rank_traceback(rank: int, line: int, code: str, exception: str) -> list[str]:
    body = ["Traceback (most recent call last):",
            '  File "/ws/train_gpt.py", line 612, in <module>', "    main()",
            f'  File "/ws/train_gpt.py", line {line}, in main', f"    {code}",
            "    " + "^" * len(code), exception]
    return [f"[rank{rank}]: {text}" for text in body]


def test_no_gpu_assertion_is_read_from_the_rank_not_from_torchrun() -> None:
    out = ["Running pytorch 2.7.1+cu126 compiled for CUDA 12.6",
           *rank_traceback(0, 40, "assert torch.cuda.is_available()", "AssertionError"), *torchrun_block(0)]
    crash = crash_summary(out)
    assert crash is not None
    assert (crash.rank, crash.exception, crash.file, crash.line) == (0, "AssertionError", "/ws/train_gpt.py", 40)
    assert crash.headline() == "rank 0: AssertionError at train_gpt.py:40 (assert torch.cuda.is_available())"
    assert crash.traceback[0] == "Traceback (most recent call last):" and "[rank0]" not in "".join(crash.traceback)
    assert crash.root_cause is not None and crash.root_cause.exit_code == 1


def test_the_root_cause_rank_wins_over_other_failed_ranks() -> None:
    oom = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."
    nccl = "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, remote process exited"
    out = [*rank_traceback(0, 300, "dist.all_reduce(x)", nccl), *rank_traceback(3, 250, "loss.backward()", oom),
           *rank_traceback(5, 300, "dist.all_reduce(x)", nccl), *torchrun_block(3, other_ranks=(0, 5))]
    crash = crash_summary(out)
    assert crash.rank == 3 and crash.exception == "OutOfMemoryError"
    assert crash.message.startswith("CUDA out of memory") and crash.line == 250
    assert "rank 3: OutOfMemoryError: CUDA out of memory" in crash.headline() and "train_gpt.py:250" in crash.headline()


def test_interleaved_ranks_are_separated() -> None:
    a = rank_traceback(0, 10, "x = 1 / 0", "ZeroDivisionError: division by zero")
    b = rank_traceback(1, 20, "y = {}['k']", "KeyError: 'k'")
    out = [line for pair in zip(a, b) for line in pair] + torchrun_block(1)
    crash = crash_summary(out)
    assert (crash.rank, crash.exception, crash.message, crash.line) == (1, "KeyError", "'k'", 20)


def test_one_process_without_rank_prefixes() -> None:
    worker = ["Traceback (most recent call last):", '  File "/ws/train_gpt.py", line 77, in <module>',
              "    files = sorted(glob.glob(args.input_bin))", "  File \"/ws/train_gpt.py\", line 80, in load",
              "    assert len(files) > 0, f'did not find any files that match the pattern {p}'",
              "AssertionError: did not find any files that match the pattern data/fineweb10B/fineweb_train_*.bin"]
    crash = crash_summary(worker + torchrun_block(0))
    assert crash.rank == 0 and crash.exception == "AssertionError" and crash.line == 80
    assert crash.message.startswith("did not find any files")


def test_chained_exceptions_report_the_one_raised_last() -> None:
    out = [f"[rank0]: {x}" for x in [
        "Traceback (most recent call last):", '  File "/ws/train_gpt.py", line 5, in <module>', "    import triton",
        "ModuleNotFoundError: No module named 'triton'", "",
        "During handling of the above exception, another exception occurred:", "",
        "Traceback (most recent call last):", '  File "/ws/train_gpt.py", line 7, in <module>',
        "    raise RuntimeError('this record needs triton')", "RuntimeError: this record needs triton"]]
    crash = crash_summary(out + torchrun_block(0))
    assert (crash.exception, crash.message, crash.line) == ("RuntimeError", "this record needs triton", 7)
    assert "During handling of the above exception, another exception occurred:" in crash.traceback


def test_a_rank_killed_by_a_signal_has_no_traceback() -> None:
    crash = crash_summary(["step:10/1770 train_time:5000ms step_avg:500.00ms",
                           *torchrun_block(2, exitcode=-9, detail="Signal 9 (SIGKILL) received by PID 5002")])
    assert crash.exception is None and crash.rank == 2
    assert crash.headline() == "rank 2: Signal 9 (SIGKILL) received by PID 5002"


def test_plain_python_and_clean_output() -> None:
    plain = ["step:1/10 val_loss:4.0", "Traceback (most recent call last):", '  File "/w/train_gpt.py", line 3, in f',
             "    1 / 0", "ZeroDivisionError: division by zero"]
    crash = crash_summary(plain)
    assert crash.rank is None and crash.headline() == "ZeroDivisionError: division by zero at train_gpt.py:3"
    assert crash_summary(["step:1/10 val_loss:4.0 train_time:1ms step_avg:1.00ms"]) is None


def test_summarize_carries_the_readable_cause_and_old_results_still_load() -> None:
    parser = LogParser()
    out = [*rank_traceback(0, 40, "assert torch.cuda.is_available()", "AssertionError"), *torchrun_block(0)]
    parser.feed("\n".join(out) + "\n")
    result = summarize("r-1", parser, 3.28, Outcome.CRASHED, exit_code=1, wall_time_s=15.0)
    assert result.error_summary == "rank 0: AssertionError at train_gpt.py:40 (assert torch.cuda.is_available())"
    assert result.error_tail[0] == "Traceback (most recent call last):"
    assert "ChildFailedError" not in "\n".join(result.error_tail)
    assert error_tail(out, Outcome.CRASHED) == result.error_tail
    old = result.to_event_fields()
    del old["error_summary"]  # a result written before the field existed
    assert RunResult.from_event_fields(old).error_summary is None


def test_a_real_crashing_process_gets_a_summary(tmp_path: Path) -> None:
    """Through the real local runner and watcher: a script that dies like a rank does under torchrun."""
    script = tmp_path / "train_gpt.py"
    lines = rank_traceback(0, 40, "assert torch.cuda.is_available()", "AssertionError") + torchrun_block(0)
    script.write_text("import sys\nsys.stderr.write(" + repr("\n".join(lines) + "\n") + ")\nsys.exit(1)\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    spec = RunSpec(run_id=new_run_id(), command=[sys.executable, str(script)], cwd=tmp_path, run_dir=run_dir,
                   env={}, target_val_loss=3.28)
    import asyncio

    handle = LocalRunner().start(spec)
    result = asyncio.run(watch_run(handle, spec))
    assert result.outcome is Outcome.CRASHED and result.exit_code == 1
    assert result.error_summary == "rank 0: AssertionError at train_gpt.py:40 (assert torch.cuda.is_available())"


def test_the_run_command_prints_the_readable_cause(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess

    from copilot.core.llm.providers import OracleProvider
    from copilot.core.session import Session
    from copilot.core.tracks.micro import MicroTrack
    from copilot.core.tracks.microdata import prepare_micro_data

    data_dir = tmp_path / "data"
    prepare_micro_data(data_dir, size="small")
    track = MicroTrack(data_dir=data_dir)
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0))
    lines = rank_traceback(0, 40, "assert torch.cuda.is_available()", "AssertionError") + torchrun_block(0)
    (session.workspace.path / track.script_name).write_text(
        "import sys\nsys.stderr.write(" + repr("\n".join(lines) + "\n") + ")\nsys.exit(1)\n")
    session.commit_external_edit("crash like a rank under torchrun")
    session.close()
    exe = shutil.which("speedcopilot") or str(Path(sys.executable).parent / "speedcopilot")
    result = subprocess.run([exe, "run", "--session", "last", "--quiet", "--session-dir", str(tmp_path / "sessions")],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "200", "SPEEDCOPILOT_DATA_DIR": str(data_dir)})
    assert result.returncode == 1 and "crashed" in result.stdout
    assert "rank 0: AssertionError at train_gpt.py:40 (assert torch.cuda.is_available())" in result.stdout
    assert "ChildFailedError" not in result.stdout
