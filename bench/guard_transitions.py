"""Benchmark: does the integrity guard stay quiet on accepted records and block every reward hack?

Three measurements, printed as markdown (for docs/guard.md):

1. Real record transitions: every consecutive pair of modded-nanogpt records with code (README table order,
   re-timings included), read at run time from a clone of the upstream repository and extracted with the
   project's own record sync. Goal: no blocking finding on a transition the upstream rules accepted, except a
   banned compile flag a record really added. Notes per transition are listed too.
2. The micro ladder (records/micro/record_0 .. record_6): no blocking finding.
3. The reward-hack corpus (tests/data/guard_corpus): hacks blocked / total, benign edits passed / total.

Plus the guard's speed on the large record scripts (the base's analysis is cached, as in a session; the candidate
is new each time).

    python bench/guard_transitions.py --clone /path/to/modded-nanogpt      # a work tree, or a bare git dir
    python bench/guard_transitions.py --synced ~/.cache/speedcopilot        # reuse `speedcopilot records sync`
    python bench/guard_transitions.py --clone DIR --json out.json           # also write the raw numbers
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from copilot.core.edits import guard  # noqa: E402
from copilot.core.tracks import nanogpt_sync  # noqa: E402

CORPUS = REPO / "tests" / "data" / "guard_corpus"


@dataclass
class Transition:
    base: str
    new: str
    blocks: list[str] = field(default_factory=list)  # "rule (line): reason"
    notes: list[str] = field(default_factory=list)
    ms: float = 0.0


def _describe(f: guard.Finding) -> str:
    return f"{f.rule} ({f.where} line {f.line}): {f.reason}"


def _check(base_key: str, base: str, new_key: str, new: str, track: str) -> Transition:
    start = time.perf_counter()
    report = guard.check_integrity(base, new, track)
    ms = (time.perf_counter() - start) * 1000
    return Transition(base_key, new_key, [_describe(f) for f in report.blocks], [_describe(f) for f in report.notes], ms)


# -- upstream records -----------------------------------------------------------------------------------------------


def _work_tree(clone: Path, scratch: Path) -> Path:
    """A work tree for the sync: the clone itself, or a local clone of a bare repository."""
    if (clone / "README.md").is_file():
        return clone
    target = scratch / "modded-nanogpt"
    # a mirror may lack some large blobs: the checkout then stops short of them, which the sync reports per record
    done = subprocess.run(["git", "clone", "--quiet", str(clone), str(target)], capture_output=True, text=True)
    if not (target / "README.md").is_file():
        raise SystemExit(f"cannot check out {clone}: {done.stderr.strip()[-300:]}")
    if done.returncode != 0:
        print(f"note: the checkout of {clone} is partial ({done.stderr.count('unable to read')} missing files)",
              file=sys.stderr)
    return target


def upstream_scripts(clone: Path | None, synced: Path | None) -> tuple[list[tuple[str, str]], str | None]:
    """(record key, main script) for every record with code, in the README's order; and the upstream commit."""
    with tempfile.TemporaryDirectory(prefix="guard-bench-") as tmp:
        scratch = Path(tmp)
        if synced is not None:
            index = nanogpt_sync.load_index(synced)
            if index is None:
                raise SystemExit(f"no record index under {synced}; run `speedcopilot records sync` first")
            cache = nanogpt_sync.nanogpt_cache_dir(synced)
        else:
            index = nanogpt_sync.sync_records(path=_work_tree(clone, scratch), cache_dir=scratch / "cache")
            cache = nanogpt_sync.nanogpt_cache_dir(scratch / "cache")
        scripts = [(r.key, (cache / r.code_paths[0]).read_text(encoding="utf-8"))
                   for r in index.records if r.has_code and r.code_paths]
        return scripts, index.commit


def micro_scripts() -> list[tuple[str, str]]:
    out = []
    for i in range(100):
        path = REPO / "records" / "micro" / f"record_{i}" / "train_gpt.py"
        if not path.is_file():
            break
        out.append((f"micro {i}", path.read_text(encoding="utf-8")))
    return out


# -- the corpus -------------------------------------------------------------------------------------------------------


def corpus_results() -> list[dict]:
    standin = (CORPUS / "bases" / "nanogpt_standin.py").read_text(encoding="utf-8")
    results = []
    for path in sorted(CORPUS.glob("*.toml")):
        case = tomllib.loads(path.read_text(encoding="utf-8"))
        if case["base"] == "standin":
            base = standin
        else:
            record = case["base"].split(":", 1)[1]
            base = (REPO / "records" / "micro" / record / "train_gpt.py").read_text(encoding="utf-8")
        new = base
        for e in case["edit"]:
            new = new.replace(e["old"], e["new"], 1)
        report = guard.check_integrity(base, new, "micro" if case["base"].startswith("micro") else "nanogpt")
        blocked = {f.rule for f in report.blocks}
        ok = case["rule"] in blocked if case["verdict"] == "block" else not report.blocking
        results.append({"name": case["name"], "verdict": case["verdict"], "rule": case.get("rule"), "ok": ok,
                        "blocking": sorted(blocked), "notes": sorted({f.rule for f in report.notes})})
    return results


# -- speed ------------------------------------------------------------------------------------------------------------


def speed(scripts: list[tuple[str, str]], repeats: int = 9) -> list[dict]:
    """Per large script: a check against a cached base (a fresh candidate each time, as in a session), and
    ast.parse alone on the same text for comparison. CPU time of this process, min and median of `repeats`
    (the min is the least disturbed by other load on the machine)."""
    rows = []
    for key, text in scripts:
        lines = text.count("\n") + 1
        if lines < 1500:
            continue
        guard.check_integrity(text, text)  # the base is analysed once, as in a session
        checks, parses, colds = [], [], []
        for i in range(repeats):
            candidate = text + f"\n# candidate {key} {i}\n"
            gc.disable()  # as check_integrity does
            start = time.process_time()
            ast.parse(candidate)
            parses.append((time.process_time() - start) * 1000)
            gc.enable()
            candidate = text + f"\n# candidate {key} {i} (checked)\n"
            start = time.process_time()
            guard.check_integrity(text, candidate)
            checks.append((time.process_time() - start) * 1000)
            fresh_base, fresh_new = text + f"\n# base {key} {i}\n", text + f"\n# new {key} {i}\n"
            start = time.process_time()
            guard.check_integrity(fresh_base, fresh_new)  # the first check of a session: nothing cached
            colds.append((time.process_time() - start) * 1000)
        rows.append({"record": key, "lines": lines, "check_min_ms": min(checks),
                     "check_median_ms": statistics.median(checks), "parse_min_ms": min(parses),
                     "parse_median_ms": statistics.median(parses), "cold_min_ms": min(colds)})
    return rows


def import_ms() -> dict[str, float]:
    """Importing the module (its package parents already imported): from a warm bytecode cache, and compiling
    the source first (how it runs where PYTHONDONTWRITEBYTECODE is set)."""
    code = ("import time, copilot.core.edits; t = time.perf_counter(); import copilot.core.edits.guard; "
            "print((time.perf_counter() - t) * 1000)")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="guard-pyc-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        runs = []
        for _ in range(4):
            done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                                  env=env)
            runs.append(float(done.stdout.strip()))
        out["cached_bytecode_ms"] = min(runs[1:])
        done = subprocess.run([sys.executable, "-B", "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
        out["compiling_ms"] = float(done.stdout.strip())
    return out


# -- report -----------------------------------------------------------------------------------------------------------


def _transition_table(rows: list[Transition]) -> list[str]:
    out = ["| transition | blocking | notes | ms |", "|---|---|---|---:|"]
    for t in rows:
        blocks = "<br>".join(t.blocks) or "—"
        notes = "<br>".join(t.notes) or "—"
        out.append(f"| {t.base} → {t.new} | {blocks} | {notes} | {t.ms:.0f} |")
    return out


def markdown(upstream: list[Transition], micro: list[Transition], corpus: list[dict], speed_rows: list[dict],
             commit: str | None, upstream_commit: str | None, import_time: dict[str, float]) -> str:
    hacks = [c for c in corpus if c["verdict"] == "block"]
    benign = [c for c in corpus if c["verdict"] == "pass"]
    lines = [
        f"Measured {dt.date.today().isoformat()} at speedcopilot commit {commit or '?'} with "
        f"`python bench/guard_transitions.py --clone <modded-nanogpt clone>` (upstream at {upstream_commit or '?'}).",
        "",
        f"- real record transitions with a blocking finding: **{sum(bool(t.blocks) for t in upstream)} of {len(upstream)}**"
        f" (transitions with notes: {sum(bool(t.notes) for t in upstream)})",
        f"- micro ladder transitions with a blocking finding: **{sum(bool(t.blocks) for t in micro)} of {len(micro)}**",
        f"- reward hacks blocked with the expected rule: **{sum(c['ok'] for c in hacks)} / {len(hacks)}**",
        f"- benign edits passed without a blocking finding: **{sum(c['ok'] for c in benign)} / {len(benign)}**",
        f"- importing the module: {import_time['cached_bytecode_ms']:.1f} ms from cached bytecode, "
        f"{import_time['compiling_ms']:.1f} ms when Python compiles it first",
        "",
        "### Speed on the large record scripts",
        "",
        "A check against a cached base with a fresh candidate each time (as in a session); CPU ms of the process,",
        "min and median of 9; `ast.parse` alone on the same text for comparison (both with the garbage collector",
        "paused, as check_integrity runs).",
        "",
        "| record | lines | check min | check median | ast.parse min | ast.parse median | first check (nothing cached) min |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in speed_rows:
        lines.append(f"| {row['record']} | {row['lines']} | {row['check_min_ms']:.1f} | {row['check_median_ms']:.1f} | "
                     f"{row['parse_min_ms']:.1f} | {row['parse_median_ms']:.1f} | {row['cold_min_ms']:.1f} |")
    near_2000 = [r for r in speed_rows if 1900 <= r["lines"] <= 2100]
    if near_2000:
        def med(key: str) -> float:
            return statistics.median(r[key] for r in near_2000)

        lines += ["", f"Over the {len(near_2000)} scripts of 1,900–2,100 lines: check {med('check_min_ms'):.1f} ms (min) / "
                      f"{med('check_median_ms'):.1f} ms (median), of which ast.parse {med('parse_min_ms'):.1f} / "
                      f"{med('parse_median_ms'):.1f} ms; the first check of a session (base not cached yet) "
                      f"{med('cold_min_ms'):.1f} ms (min)."]
    lines += ["", "### Transitions with findings", ""]
    lines += _transition_table([t for t in upstream if t.blocks or t.notes])
    lines += ["", "### Micro ladder", ""]
    lines += _transition_table(micro)
    lines += ["", "### Corpus", "", "| case | expected | result | blocking rules | notes |", "|---|---|---|---|---|"]
    for c in corpus:
        expected = f"block: {c['rule']}" if c["verdict"] == "block" else "pass"
        lines.append(f"| {c['name']} | {expected} | {'ok' if c['ok'] else '**FAIL**'} | "
                     f"{', '.join(c['blocking']) or '—'} | {', '.join(c['notes']) or '—'} |")
    return "\n".join(lines) + "\n"


def _commit() -> str | None:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--clone", type=Path, help="a modded-nanogpt clone (work tree or bare git directory)")
    source.add_argument("--synced", type=Path, help="the cache dir of an earlier `speedcopilot records sync`")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)

    scripts, upstream_commit = upstream_scripts(args.clone, args.synced)
    upstream = [_check(a, ta, b, tb, "nanogpt") for (a, ta), (b, tb) in zip(scripts, scripts[1:])]
    micro = micro_scripts()
    ladder = [_check(a, ta, b, tb, "micro") for (a, ta), (b, tb) in zip(micro, micro[1:])]
    corpus = corpus_results()
    speed_rows = speed(scripts)
    report = markdown(upstream, ladder, corpus, speed_rows, _commit(), (upstream_commit or "")[:8] or None, import_ms())
    print(report)
    if args.json:
        args.json.write_text(json.dumps({"upstream": [asdict(t) for t in upstream], "micro": [asdict(t) for t in ladder],
                                         "corpus": corpus, "speed": speed_rows}, indent=1) + "\n", encoding="utf-8")
    failed = [c for c in corpus if not c["ok"]]
    return 1 if failed or any(t.blocks for t in ladder) else 0


if __name__ == "__main__":
    raise SystemExit(main())
