"""The wheel: built without setuptools warnings, SPDX metadata, and records/themes found once installed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "-w", str(out), "--no-deps"],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    wheels = list(out.glob("speedcopilot-*.whl"))
    assert len(wheels) == 1
    return wheels[0], build.stdout + build.stderr


def test_building_the_wheel_prints_no_setuptools_warnings(wheel: tuple[Path, str]) -> None:
    _, log = wheel
    assert "would be ignored" not in log and "Package would be ignored" not in log
    assert "SetuptoolsDeprecationWarning" not in log and "License classifiers are deprecated" not in log


def test_metadata_is_spdx_and_admits_the_torch_releases_we_use(wheel: tuple[Path, str]) -> None:
    path, _ = wheel
    with zipfile.ZipFile(path) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = zf.read(meta_name).decode()
        names = zf.namelist()
    assert "License-Expression: MIT" in meta
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    torch_req = next(line.split(":", 1)[1].strip() for line in meta.splitlines()
                     if line.startswith("Requires-Dist: torch"))
    spec = SpecifierSet(torch_req.removeprefix("torch"))
    assert all(spec.contains(v) for v in ("2.13.0", "2.15.0", "2.15.3", "2.4.0"))
    assert not any(spec.contains(v) for v in ("2.16.0", "2.3.1"))


def test_records_and_themes_are_found_from_the_installed_wheel(wheel: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = wheel
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target",
                              str(target), str(path)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import copilot; from copilot.resources import records_dir, themes_dir;"
        "from copilot.core.tracks.micro import MicroTrack; from copilot.core.tracks.nanogpt import NanoGPTTrack;"
        "r, t = records_dir(), themes_dir();"
        "need = [r / 'micro/record_0/train_gpt.py', r / 'micro/catalog.toml', r / 'nanogpt/catalog.toml',"
        " r / 'micro/hints/record_0/level_1_pseudocode.txt'];"
        "assert all(p.is_file() for p in need), [str(p) for p in need if not p.is_file()];"
        "assert any(t.iterdir()), 'no themes';"
        "assert len(NanoGPTTrack().records()) == 89 and MicroTrack().record_files(0);"
        "print(copilot.__file__, r, t)"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(target)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    module_file, records, themes = result.stdout.split()
    for location in (module_file, records, themes):
        assert Path(location).is_relative_to(target), location  # from the wheel, not from this checkout
    shipped = {p.relative_to(ROOT / "records").as_posix() for p in (ROOT / "records").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    installed = {p.relative_to(Path(records)).as_posix() for p in Path(records).rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
    assert shipped <= installed
