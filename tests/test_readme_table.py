"""The README-table parser follows the Markdown table rules; the shipped catalogue is what a sync produces."""

from __future__ import annotations

import tomllib
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copilot.core.tracks import nanogpt_sync as ns
from copilot.core.tracks.nanogpt import NanoGPTTrack
from copilot.core.tracks.nanogpt_catalogue import write_catalogue
from tests.support.upstream_fixture import build_upstream_repo

split = ns._split_cells


@pytest.mark.parametrize("row, cells", [
    ("1 | 45 minutes | a \\| b | 05/28/24 | [log](x.txt),[PR](https://e.invalid/1) | @k",
     ["1", "45 minutes", "a | b", "05/28/24", "[log](x.txt),[PR](https://e.invalid/1)", "@k"]),
    ("| 1 | `a|b` | [x|y](z) | d |", ["1", "`a|b`", "[x|y](z)", "d"]),
    ("a|b", ["a", "b"]),
    ("|a|b|", ["a", "b"]),
    ("| a | |", ["a", ""]),
    ("x | ``a|`b`` | c", ["x", "``a|`b``", "c"]),
    ("x | `never closed | c", ["x", "`never closed", "c"]),
    ("1 | a (b | c", ["1", "a (b", "c"]),  # an unbalanced parenthesis is text, not a link
    ("1 | ends in a pipe \\|", ["1", "ends in a pipe |"]),
])
def test_cells(row: str, cells: list[str]) -> None:
    assert split(row) == cells


# Backticks and brackets open code spans and links, inside which a pipe does not split (tested above).
cell_text = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="`["),
                    max_size=12).map(str.strip)


@settings(max_examples=300, deadline=None)
@given(st.lists(cell_text, min_size=2, max_size=6), st.booleans(), st.booleans())
def test_escaped_pipes_round_trip(cells: list[str], leading: bool, trailing: bool) -> None:
    """Any cell text, written with its pipes and backslashes escaped as a Markdown writer does, reads back."""
    leading = leading or cells[0] == ""  # an empty first or last cell needs its outer pipe to exist
    trailing = trailing or cells[-1] == ""
    row = " | ".join(c.replace("\\", "\\\\").replace("|", "\\|") for c in cells)
    row = ("| " if leading else "") + row + (" |" if trailing else "")
    assert [c.replace("\\\\", "\\") for c in split(row)] == cells


def test_an_escaped_pipe_keeps_the_date_log_and_contributors(tmp_path: Path) -> None:
    upstream = build_upstream_repo(tmp_path / "up")
    key = upstream.add_record(90, "Faster `a|b` and a \\| b")
    rows = {r.key: r for r in ns.parse_record_table((upstream.path / "README.md").read_text())}
    row = rows[key]
    assert row.description == "Faster `a|b` and a | b"
    assert (row.date, row.contributors) == ("2026-08-03", "@someone")
    assert row.log_link == upstream.expected[key].log_file


def test_the_shipped_catalogue_changes_nothing_on_a_sync_of_its_snapshot(tmp_path: Path) -> None:
    upstream = build_upstream_repo(tmp_path / "up")
    cache = tmp_path / "cache"
    index = ns.sync_records(path=upstream.path, cache_dir=cache / "gen")
    catalogue = tmp_path / "catalog.toml"
    catalogue.write_bytes((Path(__file__).parents[1] / "records" / "nanogpt" / "catalog.toml").read_bytes())
    write_catalogue(index, catalogue)
    data = tomllib.loads(catalogue.read_text())
    by_key = {r["key"]: r for r in data["records"]}
    assert by_key["14"]["log_path"] == "2024-12-04_ValueEmbed/0aaa.txt"  # the log picked, not the folder link
    assert by_key["14"]["log_is_folder"] is True
    assert by_key["15"]["log_path"] == "2024-12-08_UNetValueEmbedsTweaks/baseline/a.txt"
    assert data["track2"], "track 2 rows are kept"

    fields = ("number", "name", "description", "time_s", "steps", "val_loss", "date", "contributors", "folder")
    before = [{f: asdict(r)[f] for f in fields} for r in NanoGPTTrack(cache_dir=cache / "user",
                                                                      catalogue_file=catalogue).records()]
    ns.sync_records(path=upstream.path, cache_dir=cache / "user")
    after = [{f: asdict(r)[f] for f in fields} for r in NanoGPTTrack(cache_dir=cache / "user",
                                                                     catalogue_file=catalogue).records()]
    assert before == after
    assert len(before) == len({r.number for r in index.records})
