"""A small local git repository laid out like KellerJordan/modded-nanogpt, with one log of every era.

The README table uses upstream's row format (no leading pipe, `[log](path),[PR](url)` cells, "none"/"-" for no
log, #21 listed three times). Each record's script is a tiny Python program that is unique to the record, so a
test can check exactly which text the sync extracted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import git

SEP = "=" * 100
DASH = "-" * 40
ROOT = "records/track_1_short"


# How each era's scripts name their data (our own minimal code in the style of each era; FACTS.md §1.5).
DATA_STYLES = {
    # records 4-14: class fields relative to the cwd, read with glob.glob
    "relative": (
        "import glob\n\n\nclass Hyperparameters:\n"
        "    input_bin : str = 'data/fineweb10B/fineweb_train_*.bin'  # train shards\n"
        "    input_val_bin : str = 'data/fineweb10B/fineweb_val_*.bin'  # val shards\n\n\n"
        "args = Hyperparameters()\nTRAIN = sorted(glob.glob(args.input_bin))\n"
    ),
    # an f-string built from a module-level folder name
    "fstring": (
        "import glob\n\nSHARDS = 'data/fineweb10B'\n\n\nclass Hyperparameters:\n"
        "    input_bin = f'{SHARDS}/fineweb_train_*.bin'\n    input_val_bin = f'{SHARDS}/fineweb_val_*.bin'\n\n\n"
        "args = Hyperparameters()\n"
    ),
    # records 15-26: relative patterns read with Path.cwd().glob (which refuses absolute ones)
    "pathlib": (
        "from pathlib import Path\n\n\nclass Hyperparameters:\n"
        "    train_files = \"data/fineweb10B/fineweb_train_*.bin\"\n"
        "    val_files = \"data/fineweb10B/fineweb_val_*.bin\"\n\n\n"
        "args = Hyperparameters()\nFILES = sorted(Path.cwd().glob(args.train_files))\n"
    ),
    # records 27-63: DATA_PATH joined after the fact
    "joined": (
        "class Hyperparameters:\n"
        "    train_files: str = \"data/fineweb10B/fineweb_train_*.bin\"\n"
        "    val_files: str = \"data/fineweb10B/fineweb_val_*.bin\"\n\n\n"
        "args = Hyperparameters()\ndata_path = os.environ.get(\"DATA_PATH\", \".\")\n"
        "args.train_files = os.path.join(data_path, args.train_files)\n"
        "args.val_files = os.path.join(data_path, args.val_files)\n"
    ),
    # record 64: the same, spelled data/fineweb/
    "fineweb": (
        "class Hyperparameters:\n"
        "    train_files: str = \"data/fineweb/fineweb_train_*.bin\"\n"
        "    val_files: str = \"data/fineweb/fineweb_val_*.bin\"\n\n\n"
        "args = Hyperparameters()\ndata_path = os.environ.get(\"DATA_PATH\", \".\")\n"
        "args.train_files = os.path.join(data_path, args.train_files)\n"
        "args.val_files = os.path.join(data_path, args.val_files)\n"
    ),
    # records 65+: DATA_PATH joined inside the class body
    "in_class": (
        "class Hyperparameters:\n    data_path = os.environ.get(\"DATA_PATH\", \".\")\n"
        "    train_files: str = os.path.join(data_path, \"data/fineweb10B/fineweb_train_*.bin\")\n"
        "    val_files: str = os.path.join(data_path, \"data/fineweb10B/fineweb_val_*.bin\")\n\n\n"
        "args = Hyperparameters()\n"
    ),
    # the benchmark's templates: absolute patterns from the environment
    "benchmark": (
        "import glob\n\n\nclass Hyperparameters:\n"
        "    input_bin = os.environ[\"NANOGPT_TRAIN_FILES\"]\n"
        "    input_val_bin = os.environ[\"NANOGPT_VAL_FILES\"]\n"
        "    val_tokens = int(os.environ[\"NANOGPT_VAL_TOKENS\"])\n"
    ),
}


def script(number: int, extra: str = "", data: str = "") -> str:
    """A tiny record script; `data` is one of DATA_STYLES' snippets (module level, harmless to run)."""
    snippet = f"{DATA_STYLES[data]}\n\n" if data else ""
    return (
        f"import os\nimport sys\n\nRECORD = {number}\n{snippet}\n\ndef main():\n"
        f"    print('record {number}')\n{extra}\n\nif __name__ == '__main__':\n    main()\n"
    )


KERNELS = "import triton\n\n\ndef kernel():\n    return 'triton kernels'\n"
DC_KERNELS = "import triton\n\n\ndef dc_kernel():\n    return 'dc kernels'\n"

NVIDIA_SMI = (
    "Running Python 3.12.3\nRunning PyTorch 2.10.0+cu128 compiled for CUDA 12.8\nRunning Triton version 3.6.0\n"
    "+-----------------------------------------------------------------------------------------+\n"
    "| NVIDIA-SMI 570.00                 Driver Version: 570.00         CUDA Version: 12.8     |\n"
    "|   0  NVIDIA H100 80GB HBM3          On  |   00000000:19:00.0 Off |                    0 |\n"
    "+-----------------------------------------------------------------------------------------+\n"
)


def step_lines(total: int, final_val: float, with_train_loss: bool, every: int = 2) -> str:
    out = []
    ms = 0
    for step in range(total + 1):
        if step % every == 0 or step == total:
            val = final_val + 0.5 * (total - step) / total
            out.append(f"step:{step}/{total} val_loss:{val:.4f} train_time:{ms}ms step_avg:{ms / max(step, 1):.2f}ms")
        if step == total:
            break
        ms += 100
        loss = f" train_loss:{final_val + 0.6 * (total - step) / total:.4f}" if with_train_loss else ""
        out.append(f"step:{step + 1}/{total}{loss} train_time:{ms}ms step_avg:{ms / (step + 1):.2f}ms")
    return "\n".join(out) + "\n"


def modern_log(code: str, total: int = 6, final_val: float = 3.2775) -> str:
    return f"{code}\n{SEP}\n{NVIDIA_SMI}{SEP}\n{step_lines(total, final_val, with_train_loss=False)}"


def old_log(code: str, total: int = 6, final_val: float = 3.2785) -> str:
    """Records 4–13: the log starts with the separator, then the code, then another separator."""
    return f"{SEP}\n{code}{SEP}\n{step_lines(total, final_val, with_train_loss=True)}"


def companion_log(main: str, companions: dict[str, str], total: int = 6, final_val: float = 3.2794) -> str:
    code = main
    for name, body in companions.items():
        code += f"\n\n{DASH}\n# {name}\n{DASH}\n\n{body}"
    return modern_log(code, total, final_val)


def llmc_log(steps: int = 4, final_val: float = 3.2722) -> str:
    out = []
    for s in range(steps + 1):
        out.append(f"s:{s} tel:{final_val + 0.1 * (steps - s):.4f}")
        out.append(f"s:{s} trl:{final_val + 0.2 * (steps - s):.4f} lr:0.000600 norm:1.02")
    return "\n".join(out) + "\n"


@dataclass
class Expected:
    has_code: bool
    main: str | None = None
    companions: dict[str, str] = field(default_factory=dict)
    steps: int | None = None
    val_loss: float | None = None
    log_file: str | None = None


@dataclass
class UpstreamFixture:
    path: Path
    repo: git.Repo
    expected: dict[str, Expected]  # by record key

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def add_record(self, number: int, description: str) -> str:
        """Append a new record row + log and commit it (an upstream update)."""
        folder = f"2026-08-03_Record{number}"
        rel = f"{ROOT}/{folder}/aaaa{number}.txt"
        main = script(number)
        _write(self.path / rel, modern_log(main, total=4, final_val=3.2771))
        readme = self.path / "README.md"
        text = readme.read_text()
        row = f"{number} | 1.100 minutes | {description} | 08/03/26 | [log]({rel}),[PR](https://example.invalid/pull/1) | @someone\n"
        text = text.replace("\n## Rules", f"{row}\n## Rules", 1)
        readme.write_text(text)
        self.repo.index.add([rel, "README.md"])
        self.repo.index.commit(f"Record {number}")
        self.expected[str(number)] = Expected(True, main, steps=4, val_loss=3.2771, log_file=rel)
        return str(number)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


README_HEAD = """# Modded-NanoGPT

A fixture shaped like the upstream README.

## World record history

The following is the progression of world records.

| # | Record time | Description | Date | Log | Contributors |
| - | - | - | - | - | - |
"""

README_TAIL = """
## Rules

1. Not modify the train or validation data pipelines.

## Speedrun track 2: GPT-2 Medium

| # | Record time | Description | Date | Log | Contributors |
| - | - | - | - | - | - |
1 | 5.8 hours | [llm.c baseline (350M parameters)](https://example.invalid) | 05/28/24 | [log](records/track_2_medium/2025-01-18/main.log) | @karpathy
"""


def build_upstream_repo(root: Path) -> UpstreamFixture:
    """Create the fixture repository under root/modded-nanogpt and commit it."""
    path = root / "modded-nanogpt"
    path.mkdir(parents=True)
    expected: dict[str, Expected] = {}
    rows: list[str] = []

    def row(number: int, time: str, desc: str, date: str, log_cell: str, who: str) -> None:
        rows.append(f"{number} | {time} | {desc} | {date} | {log_cell} | {who}")

    def link(rel: str) -> str:
        return f"[log]({rel})"

    # 1: llm.c-format log (no code)
    rel = f"{ROOT}/2024-10-13_llmc/main.log"
    _write(path / rel, llmc_log())
    row(1, "45 minutes", "[llm.c baseline](https://example.invalid/481)", "05/28/24", link(rel), "@karpathy, llm.c contributors")
    expected["1"] = Expected(False, steps=4, val_loss=3.2722, log_file=rel)

    # 3: no log at all
    row(3, "24.9 minutes", "[Introduced the Muon optimizer](https://example.invalid/x)", "10/04/24", "none", "@kellerjordan0, @jxbz")
    expected["3"] = Expected(False)

    # 4: log starting with the separator; the folder also holds a train_gpt2.py copy
    main4 = script(4, "    # muon improvements", data="relative")
    rel = f"{ROOT}/2024-10-10_Muon/eb5659d0-fb6a-49e5-a311-f1f89412f726.txt"
    _write(path / rel, old_log(main4, total=6, final_val=3.2785))
    _write(path / f"{ROOT}/2024-10-10_Muon/train_gpt2.py", "# an older copy\n")
    row(4, "22.3 minutes", "[Muon improvements](https://example.invalid/4)", "10/11/24", link(rel), "@kellerjordan0, @bozavlado")
    expected["4"] = Expected(True, main4, steps=6, val_loss=3.2785, log_file=rel)

    # 5: ordinary log (code, separator, versions, separator, step lines)
    main5 = script(5, "    x = '=' * 99  # not a separator line", data="relative")
    rel = f"{ROOT}/2024-10-14_ModernArch/dabaaddd-237c-4ec9-939d-6608a9ed5e27.txt"
    _write(path / rel, modern_log(main5, total=8, final_val=3.2741))
    row(5, "15.2 minutes", "[Pad embeddings & architectural improvements](https://example.invalid/5)", "10/14/24", link(rel), "@Grad62304977, @kellerjordan0")
    expected["5"] = Expected(True, main5, steps=8, val_loss=3.2741, log_file=rel)

    # 6: folder link to a folder holding only a .py copy
    main6 = script(6, data="relative")
    folder = f"{ROOT}/2024-10-17_DistributedMuon"
    _write(path / folder / "train_gpt.py", main6)
    _write(path / folder / "README.md", "notes\n")
    row(6, "13.1 minutes", "[Distributed the overhead of Muon](https://example.invalid/6)", "10/18/24", link(folder), "@kellerjordan0")
    expected["6"] = Expected(True, main6, log_file=f"{folder}/train_gpt.py")

    # 14: folder link with several logs directly inside (the first sorted is picked)
    folder = f"{ROOT}/2024-12-04_ValueEmbed"
    main14 = script(14, "    # value embeddings, run a", data="fstring")
    _write(path / folder / "0aaa.txt", modern_log(main14, total=6, final_val=3.2751))
    _write(path / folder / "7bbb.txt", modern_log(script(14, "    # run b"), total=6, final_val=3.2790))
    _write(path / folder / "sub" / "00first.txt", modern_log(script(14, "    # nested"), total=6, final_val=3.2700))
    row(14, "4.41 minutes", "[Value Embeddings](https://example.invalid/14)", "12/04/24", link(folder), "@KoszarskyB")
    expected["14"] = Expected(True, main14, steps=6, val_loss=3.2751, log_file=f"{folder}/0aaa.txt")

    # 15: folder link whose logs are only in sub-folders (trailing slash in the link)
    folder = f"{ROOT}/2024-12-08_UNetValueEmbedsTweaks"
    main15 = script(15, data="pathlib")
    _write(path / folder / "README.md", "readme\n")
    _write(path / folder / "this_pr" / "b.txt", modern_log(script(15, "    # b"), total=6, final_val=3.2799))
    _write(path / folder / "baseline" / "a.txt", modern_log(main15, total=6, final_val=3.2773))
    row(15, "3.95 minutes", "[U-net pattern for value embeds](https://example.invalid/15)", "12/08/24", link(folder + "/"), "@leloykun, @YouJiacheng")
    expected["15"] = Expected(True, main15, steps=6, val_loss=3.2773, log_file=f"{folder}/baseline/a.txt")

    # 21 and its two re-timings (the re-timings are kept, with their own keys)
    for key, date, desc, time, val, who in (
        ("21", "01/26/25", "[Reduced batch size](https://example.invalid/21)", "2.933 minutes", 3.2808, "@leloykun"),
        ("21-retime-1", "02/01/25", "21st record with new timing", "2.997 minutes", 3.2788,
         "not a new record, just re-timing #21 with the [updated rules](#timing-change-after-record-21)"),
        ("21-retime-2", "05/24/25", "21st record with latest torch", "3.014 minutes", 3.2830,
         "not a new record, just re-timing #21 with latest torch"),
    ):
        main = script(21, f"    # {key}", data="pathlib")
        rel = f"{ROOT}/2025-{date[:2]}-{date[3:5]}_R{key.replace('-', '')}/c44090cc-{key}.txt"
        _write(path / rel, modern_log(main, total=6, final_val=val))
        row(21, time, desc, date, link(rel), who)
        expected[key] = Expected(True, main, steps=6, val_loss=val, log_file=rel)

    # 61: log with companion sources appended under dashed headers; link cell also holds a PR link
    main61 = (
        "import os\nimport sys\n\nwith open(sys.argv[0]) as f:\n    code = f.read()\n"
        "code += f\"\\n\\n{'-'*40}\\n# triton_kernels.py\\n{'-'*40}\\n\\n\"\n# " + "-" * 77 + "\n"
        "RECORD = 61\n" + DATA_STYLES["joined"]
    )
    rel = f"{ROOT}/2026-01-18_UnifiedOptimizers/unified-optimizer/2fc79469.txt"
    _write(path / rel, companion_log(main61, {"triton_kernels.py": KERNELS, "dc_triton_kernels.py": DC_KERNELS}))
    row(61, "1.748 minutes", "[Unified Optimizers and Transposed LM Head](https://example.invalid/61)", "01/18/26",
        f"{link(rel)},[PR](https://github.com/KellerJordan/modded-nanogpt/pull/200)", "@ChrisJMcCormick")
    expected["61"] = Expected(
        True, main61, {"triton_kernels.py": KERNELS, "dc_triton_kernels.py": DC_KERNELS}, steps=6, val_loss=3.2794, log_file=rel
    )

    # 64 and 65: DATA_PATH joined with data/fineweb/, and inside the class body
    for number, style, date in ((64, "fineweb", "01/30/26"), (65, "in_class", "01/30/26")):
        main = script(number, data=style)
        rel = f"{ROOT}/2026-01-30_Record{number}/{number:04d}abcd.txt"
        _write(path / rel, modern_log(main, total=6, final_val=3.2777))
        row(number, "1.630 minutes", f"[Record {number}](https://example.invalid/{number})", date, link(rel), "@someone")
        expected[str(number)] = Expected(True, main, steps=6, val_loss=3.2777, log_file=rel)

    # 66: "-" in the log and contributor columns
    row(66, "1.595 minutes", "Torch 2.10", "01/31/26", "-", "-")
    expected["66"] = Expected(False)

    # 86: a link to a folder that does not exist
    row(86, "1.266 minutes", "Algebraic rewrite of XSA", "05/27/26", link(f"{ROOT}/2026-05-27_Missing"), "@aryavohra")
    expected["86"] = Expected(False)

    _write(path / "README.md", README_HEAD + "\n".join(rows) + "\n" + README_TAIL)
    _write(path / "data" / "cached_fineweb10B.py", "import sys\nprint('would download', sys.argv[1:])\n")
    _write(path / "train_gpt.py", script(99))
    repo = git.Repo.init(path, initial_branch="master")
    repo.git.add(A=True)
    repo.index.commit("fixture snapshot")
    return UpstreamFixture(path=path, repo=repo, expected=expected)
