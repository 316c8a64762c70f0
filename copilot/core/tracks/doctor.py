"""Will a nanogpt run work here? Checks of GPUs, torch, torchrun, shards, disk, the record and the remote end.

Never imports torch in this process: what needs torch runs in a subprocess of the configured python.
Each check is one line with its fix; `DoctorReport.ok` is False when a run would fail.

    report = run_doctor(track, record=21, gpus=1)
    for check in report.failures(): print(check.line())
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from copilot.core.errors import SpeedcopilotError
from copilot.core.tracks import nanogpt_data as nd

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_FREE_GIB = 1.0
LOW_FREE_GIB = 10.0
TORCH_PROBE = r"""
import json, sys
out = {"python": sys.version.split()[0], "executable": sys.executable}
try:
    import torch
    out["torch"] = torch.__version__
    out["cuda"] = torch.version.cuda
    out["cuda_available"] = bool(torch.cuda.is_available())
    out["device_count"] = torch.cuda.device_count() if out["cuda_available"] else 0
    if out["cuda_available"]:
        out["devices"] = [torch.cuda.get_device_name(i) for i in range(out["device_count"])]
except Exception as exc:
    out["torch_error"] = f"{type(exc).__name__}: {exc}"
try:
    import triton
    out["triton"] = triton.__version__
except Exception as exc:
    out["triton_error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    message: str
    fix: str | None = None

    def line(self) -> str:
        fix = f" — fix: {self.fix}" if self.fix and self.status != OK else ""
        return f"{self.status:4s} {self.name}: {self.message}{fix}"


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    records: list[dict[str, Any]] | None = None  # with all_records: one entry per synced record

    @property
    def ok(self) -> bool:
        """No check failed: a run would start and find what it needs."""
        return not self.failures()

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARN]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}
        if self.records is not None:
            out["records"] = self.records
        return out


class DoctorRefusal(SpeedcopilotError):
    """A pre-run check failed: the run would not work (the message is the failing lines)."""


# -- probes (injectable for tests) -----------------------------------------------------------------------


@dataclass
class Probes:
    """How the doctor looks at the machine; tests replace single probes."""

    nvidia_smi: Callable[[], list[Any]] | None = None
    torch_info: Callable[[str], dict[str, Any]] | None = None
    which: Callable[[str], str | None] = shutil.which
    disk_free: Callable[[Path], int] = lambda path: shutil.disk_usage(_existing(path)).free
    remote: Callable[[str, str], subprocess.CompletedProcess[str]] | None = None


def _existing(path: Path) -> Path:
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def probe_torch(python: str, timeout_s: float = 180.0) -> dict[str, Any]:
    """torch/triton facts from a subprocess of `python` (never imported here)."""
    try:
        proc = subprocess.run([python, "-c", TORCH_PROBE], capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"torch_error": f"could not run {python}: {exc}"}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"torch_error": f"{python} failed: {tail[0]}"}


def _nvidia_smi() -> list[Any]:
    from copilot.core.tracks.nanogpt import detect_gpus

    return detect_gpus()


# -- the checks ------------------------------------------------------------------------------------------


def run_doctor(track: Any, *, record: int | None = None, gpus: int = 1, runner_url: str = "local",
               python: str | None = None, all_records: bool = False, probes: Probes | None = None,
               ssh_options: list[str] | None = None) -> DoctorReport:
    """Check that a run of `track` (record `record`, on `gpus` GPUs, through `runner_url`) would work."""
    probes = probes or Probes()
    report = DoctorReport()
    add = report.checks.append
    if getattr(track, "name", "") != "nanogpt":
        add(_micro_data(track))
        return report
    remote = runner_url.startswith("ssh://")
    if remote:
        report.checks += check_remote(runner_url, gpus, probes, ssh_options or [])
    else:
        report.checks += check_local_machine(gpus, python or sys.executable, record, track, probes)
        add(check_shards(track.data_root))
        add(check_disk(track.data_root, probes))
    add(check_synced(track))
    if record is not None:
        report.checks += check_record(track, record, gpus)
    if all_records:
        report.records = all_record_status(track)
    return report


def check_local_machine(gpus: int, python: str, record: int | None, track: Any, probes: Probes) -> list[Check]:
    checks: list[Check] = []
    if gpus not in (1, 2, 4, 8):
        checks.append(Check("gpus", FAIL, f"--gpus {gpus} is not 1, 2, 4 or 8 (the scripts need 8 % world_size == 0)",
                            "pass --gpus 1, 2, 4 or 8"))
    seen = (probes.nvidia_smi or _nvidia_smi)()
    if not seen:
        smi = probes.which("nvidia-smi")
        why = "nvidia-smi is not installed" if smi is None else "nvidia-smi lists no GPU"
        checks.append(Check("gpus", FAIL, f"no NVIDIA GPU visible ({why}); a nanogpt run needs CUDA GPUs",
                            "run on a machine with NVIDIA GPUs and their driver, use --runner ssh://host/path, "
                            "or train the CPU ladder with --track micro"))
    elif len(seen) < gpus:
        checks.append(Check("gpus", FAIL, f"{len(seen)} GPU(s) visible, the run asks for {gpus}",
                            f"pass --gpus {max(g for g in (1, 2, 4, 8) if g <= len(seen))}"))
    else:
        names = ", ".join(sorted({getattr(g, 'name', str(g)) for g in seen}))
        checks.append(Check("gpus", OK, f"{len(seen)} GPU(s): {names}"))
    info = (probes.torch_info or probe_torch)(python)
    checks += _torch_checks(info, seen, python)
    checks.append(_torchrun_check(python, probes))
    if record is not None and "torch" in info:
        checks += _version_checks(track, record, info)
    return checks


def _torch_checks(info: dict[str, Any], seen: list[Any], python: str) -> list[Check]:
    if "torch" not in info:
        return [Check("torch", FAIL, f"torch is not importable by {python} ({info.get('torch_error', 'unknown')})",
                      "install a CUDA build of PyTorch into this environment (pip install torch)")]
    version = info["torch"]
    if not info.get("cuda"):
        return [Check("torch", FAIL, f"torch {version} is a CPU-only build (torch.version.cuda is None)",
                      "install a CUDA build, e.g. `pip install torch --index-url "
                      "https://download.pytorch.org/whl/cu128` (match your driver's CUDA)")]
    if not info.get("cuda_available"):
        detail = "no GPU visible" if not seen else "the driver does not match this CUDA build"
        return [Check("torch", FAIL, f"torch {version} (CUDA {info['cuda']}) cannot use CUDA: "
                      f"torch.cuda.is_available() is False ({detail})",
                      "check `nvidia-smi`, and install the torch build for your driver's CUDA version")]
    return [Check("torch", OK, f"torch {version} with CUDA {info['cuda']}, {info.get('device_count', 0)} device(s)")]


def _torchrun_check(python: str, probes: Probes) -> Check:
    found = probes.which("torchrun")
    expected = Path(python).parent / "torchrun"
    if found is None:
        return Check("torchrun", FAIL, "torchrun is not on PATH; runs are started with `torchrun --standalone`",
                     f"activate the environment of {python} (its bin/ holds torchrun once torch is installed)")
    if Path(found).resolve() != expected.resolve() and Path(found).parent.resolve() != Path(python).parent.resolve():
        return Check("torchrun", WARN, f"torchrun on PATH is {found}, not from this app's environment ({expected})",
                     f"put {expected.parent} first on PATH so runs use the same torch the doctor checked")
    return Check("torchrun", OK, f"{found}")


def _version_tuple(version: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", version or "")
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def record_requirements(track: Any, number: int) -> dict[str, str]:
    index = track.index()
    rec = index.primary(number) if index is not None else None
    if rec is not None and rec.requirements:
        return dict(rec.requirements)
    from copilot.core.tracks.nanogpt_sync import era_requirements

    return era_requirements(number, rec.environment if rec is not None else {})


def _version_checks(track: Any, number: int, info: dict[str, Any]) -> list[Check]:
    needs = record_requirements(track, number)
    checks: list[Check] = []
    source = needs.get("source", "its era")
    for package in ("torch", "triton"):
        want = needs.get(package)
        have = info.get(package)
        if not want:
            continue
        if not have:
            checks.append(Check(package, WARN if package == "triton" else FAIL,
                                f"record {number} needs {package} {want} ({source}); none is installed",
                                f"pip install {package}=={want.split('+')[0]}"))
            continue
        if _version_tuple(have) < _version_tuple(want):
            status = FAIL if package == "torch" else WARN
            checks.append(Check(package, status, f"record {number} needs {package} ≥ {'.'.join(map(str, _version_tuple(want)))}"
                                f" ({source}: {want}); this environment has {have}",
                                f"install {package} {want.split('+')[0]} or newer in this environment"))
        elif _version_tuple(have) != _version_tuple(want):
            checks.append(Check(package, WARN, f"record {number} was run with {package} {want} ({source}); "
                                f"this environment has {have}: it usually runs, times are not comparable",
                                f"for comparable times use {package} {want.split('+')[0]}"))
        else:
            checks.append(Check(package, OK, f"{package} {have} matches record {number} ({source})"))
    return checks


def check_shards(data_root: Path) -> Check:
    directory = nd.shard_dir(data_root)
    train, val = nd.inspect_shards(directory)
    if not train or not val:
        missing = " and ".join(x for x, have in (("train", train), ("val", val)) if not have)
        return Check("data", FAIL, f"no {missing} shards in {directory}",
                     "speedcopilot data prepare --track nanogpt (downloads FineWeb shards; or --synthetic for "
                     "a smoke test)")
    broken = [s for s in train + val if s.problem]
    if broken:
        return Check("data", FAIL, f"{len(broken)} broken shard(s): {broken[0].problem}",
                     "delete the broken shards and run `speedcopilot data prepare --track nanogpt` again")
    total = sum(s.tokens or 0 for s in train)
    if nd.is_synthetic(directory):
        return Check("data", WARN, f"{len(train)} synthetic train shard(s) ({total:,} tokens) in {directory}: "
                     "fine for smoke tests, not for record times",
                     "speedcopilot data prepare --track nanogpt --data-dir <another folder> for real shards")
    if val[0].tokens is not None and val[0].tokens < nd.VAL_TOKENS:
        return Check("data", FAIL, f"the val shard holds {val[0].tokens:,} tokens, fewer than the "
                     f"{nd.VAL_TOKENS:,} every record evaluates on", "prepare the data again")
    return Check("data", OK, f"{len(train)} train shard(s), {total:,} tokens; val {val[0].tokens:,} tokens; "
                 "every header matches its file size")


def check_disk(path: Path, probes: Probes) -> Check:
    try:
        free = probes.disk_free(path) / 2**30
    except OSError as exc:
        return Check("disk", WARN, f"cannot read the free space at {path}: {exc}")
    if free < MIN_FREE_GIB:
        return Check("disk", FAIL, f"{free:.1f} GiB free at {_existing(path)}; runs write logs and the data "
                     "needs ~200 MB per shard", "free some disk space")
    if free < LOW_FREE_GIB:
        return Check("disk", WARN, f"only {free:.1f} GiB free at {_existing(path)}", "free some disk space")
    return Check("disk", OK, f"{free:.0f} GiB free at {_existing(path)}")


def check_synced(track: Any) -> Check:
    index = track.index()
    if index is None:
        return Check("records", FAIL, "the nanogpt records are not synced: no record has code yet",
                     "speedcopilot records sync (or --path <clone>; --benchmark <llm-speedrunner clone> for 1-3)")
    templates = sum(r.code_source == "llm-speedrunner template" for r in index.records)
    extra = f", {templates} from the benchmark's templates" if templates else ""
    return Check("records", OK, f"{sum(r.has_code for r in index.records)} records with code{extra}")


def check_record(track: Any, number: int, gpus: int) -> list[Check]:
    try:
        info = track.record(number)
    except SpeedcopilotError as exc:
        return [Check("record", FAIL, str(exc), "pick a record from `speedcopilot records list --track nanogpt`")]
    if not info.has_code:
        hint = " (records 1-3: sync with --benchmark <llm-speedrunner clone>)" if number <= 3 else ""
        return [Check("record", FAIL, f"record {number} has no training code{hint}",
                      "start from a record with code (`speedcopilot records list --track nanogpt`)")]
    try:
        status = record_status(track, number)
    except SpeedcopilotError as exc:
        return [Check("record", FAIL, str(exc), "run `speedcopilot records sync` again")]
    checks = []
    if status["data"] != "ok":
        checks.append(Check("record data", FAIL, f"record {number} would find no data: {status['data']}",
                            "edit the script's data paths to data/fineweb10B/… (relative) or prepare the data"))
    else:
        checks.append(Check("record data", OK, f"record {number} finds its train and val shards"))
    needs = status.get("needs", [])
    if "8 GPUs" in " ".join(needs) and gpus != 8:
        checks.append(Check("record gpus", FAIL, f"record {number}'s script asserts world_size == 8",
                            "run it with --gpus 8, or edit the assert"))
    for need in needs:
        if "network" in need:
            checks.append(Check("record network", WARN, f"record {number} {need}",
                                "run once with network access so the cache fills, or pick an older record"))
    return checks


def record_status(track: Any, number: int) -> dict[str, Any]:
    """Whether a record's data resolves from a workspace (statically) and what else it needs."""
    from copilot.core.tracks.datapaths import resolve_data

    files = track.record_files(number)
    script = files[track.script_name]
    with tempfile.TemporaryDirectory(prefix="speedcopilot-doctor-") as tmp:
        workdir = Path(tmp)
        track.prepare_workdir(workdir)
        result = resolve_data(script, workdir, {**os.environ, **track.run_env()})
    return {"data": result.status(), "train_pattern": result.train_pattern, "val_pattern": result.val_pattern,
            "needs": script_needs(script), "requirements": record_requirements(track, number),
            "code_source": track.code_source(number)}


def script_needs(script: str) -> list[str]:
    """What a script needs besides torch and the shards, read from its text."""
    needs = []
    if re.search(r"assert\s+\(?\s*world_size\s*==\s*8", script):
        needs.append("8 GPUs (it asserts world_size == 8)")
    elif "8 % world_size" in script:
        needs.append("1, 2, 4 or 8 GPUs (gradient accumulation keeps the 8-GPU batch)")
    else:
        needs.append("the global batch scales with the GPU count (fewer GPUs: a smaller batch)")
    if "get_kernel(" in script:
        needs.append("network at run time: Flash Attention 3 kernels from the Hugging Face Hub (kernels package)")
    if "tiktoken" in script:
        needs.append("network at run time: tiktoken's GPT-2 encoding (or a filled tiktoken cache)")
    if "flex_attention" in script:
        needs.append("torch ≥ 2.5 (FlexAttention)")
    return needs


def all_record_status(track: Any) -> list[dict[str, Any]]:
    index = track.index()
    if index is None:
        return []
    out = []
    for rec in index.records:
        if rec.retiming:
            continue
        entry: dict[str, Any] = {"number": rec.number, "key": rec.key, "has_code": rec.has_code}
        if not rec.has_code:
            entry["data"] = f"no code ({rec.note or 'none upstream'})"
        else:
            try:
                entry.update(record_status(track, rec.number))
            except SpeedcopilotError as exc:
                entry["data"] = str(exc)
        out.append(entry)
    return out


def _micro_data(track: Any) -> Check:
    ready = getattr(track, "data_ready", lambda: True)()
    if ready:
        return Check("data", OK, "micro corpus prepared")
    return Check("data", FAIL, "the micro corpus is not prepared", "speedcopilot data prepare --track micro")


# -- ssh runners -----------------------------------------------------------------------------------------


REMOTE_PROBE = (
    "command -v python3 >/dev/null && echo python=$(command -v python3); "
    "command -v torchrun >/dev/null && echo torchrun=$(command -v torchrun); "
    "command -v nvidia-smi >/dev/null && echo gpus=$(nvidia-smi -L 2>/dev/null | grep -c GPU); "
    "python3 -c 'import torch; print(\"torch=\" + torch.__version__ + \" cuda=\" + str(torch.version.cuda))' "
    "2>/dev/null; echo end=1"
)


def check_remote(runner_url: str, gpus: int, probes: Probes, ssh_options: list[str] | None = None) -> list[Check]:
    from copilot.core.runs.ssh import SshTarget

    try:
        target = SshTarget.parse(runner_url)
    except SpeedcopilotError as exc:
        return [Check("runner", FAIL, str(exc), "use --runner ssh://[user@]host[:port]/path")]
    try:
        if probes.remote is not None:
            proc = probes.remote(runner_url, REMOTE_PROBE)
        else:
            proc = _ssh_run(runner_url, REMOTE_PROBE, ssh_options or [])
    except (OSError, subprocess.SubprocessError) as exc:
        return [Check("ssh", FAIL, f"ssh to {target.host} failed: {exc}",
                      f"check that `ssh {target.host}` works without a password prompt")]
    facts = dict(line.split("=", 1) for line in proc.stdout.split() if "=" in line)
    if proc.returncode != 0 or "end" not in facts:
        last = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return [Check("ssh", FAIL, f"ssh to {target.host} failed: {last[0]}",
                      f"check that `ssh {target.host}` works without a password prompt (BatchMode)")]
    checks = [Check("ssh", OK, f"{target.host} answers")]
    checks.append(Check("remote python", OK, facts["python"]) if "python" in facts else
                  Check("remote python", FAIL, f"no python3 on {target.host}'s PATH", "install python3 there"))
    checks.append(Check("remote torchrun", OK, facts["torchrun"]) if "torchrun" in facts else
                  Check("remote torchrun", FAIL, f"no torchrun on {target.host}'s PATH for non-interactive ssh",
                        "install torch there, or add its venv's bin/ to PATH in ~/.bashrc / the runner's setup"))
    count = int(facts.get("gpus", "0") or 0)
    checks.append(Check("remote gpus", OK, f"{count} GPU(s)") if count >= gpus else
                  Check("remote gpus", FAIL, f"{target.host} shows {count} GPU(s), the run asks for {gpus}",
                        "pick another host or lower --gpus"))
    torch_fact = facts.get("torch")
    if torch_fact is None:
        checks.append(Check("remote torch", FAIL, f"python3 on {target.host} cannot import torch",
                            "install a CUDA build of torch there"))
    elif "cuda=None" in proc.stdout:
        checks.append(Check("remote torch", FAIL, f"torch {torch_fact} on {target.host} is a CPU-only build",
                            "install a CUDA build of torch there"))
    else:
        checks.append(Check("remote torch", OK, f"torch {torch_fact}"))
    return checks


def _ssh_run(runner_url: str, script: str, options: list[str]) -> subprocess.CompletedProcess[str]:
    from copilot.core.runs.ssh import SshTarget

    target = SshTarget.parse(runner_url)
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    if target.port:
        argv += ["-p", str(target.port)]
    if target.user:
        argv += ["-l", target.user]
    argv += [*options, target.host, "sh -c " + shlex.quote(script)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def preflight(track: Any, gpus: int, runner_url: str = "local", record: int | None = None) -> DoctorReport:
    """The checks before a nanogpt run; raises DoctorRefusal with the failing lines. Other tracks pass."""
    if getattr(track, "name", "") != "nanogpt":
        return DoctorReport()
    report = run_doctor(track, gpus=gpus, runner_url=runner_url, record=record)
    if not report.ok:
        lines = "; ".join(c.line() for c in report.failures())
        raise DoctorRefusal(f"this run would fail, so it was not started: {lines}")
    return report


__all__ = ["Check", "DoctorRefusal", "DoctorReport", "Probes", "preflight", "probe_torch", "record_status",
           "run_doctor", "script_needs"]
