"""A small local git repository laid out like facebookresearch/llm-speedrunner (our own placeholder text).

    workspace_templates/nanogpt_speedrun/record_<N>/train_gpt2.py + results.json     N = 1..21
    data/nanogpt_speedrun_knowledge_in_levels/record_<N>/level_{0,1,2,3}_*.txt       N = 1..20 (hints N -> N+1)

Each template is a tiny program that names its data the way the benchmark's templates do (environment
variables NANOGPT_TRAIN_FILES / NANOGPT_VAL_FILES / NANOGPT_VAL_TOKENS); each hint file says which folder and
level it is, so a test can tell exactly which file was read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import git

from tests.support.upstream_fixture import script

TEMPLATES = Path("workspace_templates") / "nanogpt_speedrun"
HINTS = Path("data") / "nanogpt_speedrun_knowledge_in_levels"
LEVEL_FILES = {0: "level_0_diff.txt", 1: "level_1_pseudo.txt", 2: "level_2_description.txt", 3: "level_3_paper.txt"}


@dataclass
class BenchmarkFixture:
    path: Path
    repo: git.Repo
    templates: dict[int, str]  # record -> template script text


def hint_text(folder: int, level: int) -> str:
    return f"placeholder hint: folder record_{folder}, level {level}\n"


def template_text(number: int) -> str:
    return script(number, f"    # benchmark template for record {number}", data="benchmark")


def build_benchmark_repo(root: Path) -> BenchmarkFixture:
    path = root / "llm-speedrunner"
    templates: dict[int, str] = {}
    for number in range(1, 22):
        folder = path / TEMPLATES / f"record_{number}"
        folder.mkdir(parents=True)
        templates[number] = template_text(number)
        (folder / "train_gpt2.py").write_text(templates[number])
        (folder / "results.json").write_text(json.dumps({"metrics": {"n_steps": 10 * number}}) + "\n")
    for number in range(1, 21):
        folder = path / HINTS / f"record_{number}"
        folder.mkdir(parents=True)
        for level, name in LEVEL_FILES.items():
            (folder / name).write_text(hint_text(number, level))
    (path / HINTS / "record_2" / "level_9_muon.txt").write_text("placeholder extra knowledge\n")
    (path / HINTS / "llm_logs.jsonl").write_text("{}\n")
    (path / "README.md").write_text("# a fixture shaped like the benchmark repository\n")
    repo = git.Repo.init(path, initial_branch="main")
    repo.git.add(A=True)
    repo.index.commit("benchmark fixture")
    return BenchmarkFixture(path=path, repo=repo, templates=templates)
