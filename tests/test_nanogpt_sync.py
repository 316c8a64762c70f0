"""Sync of the real ladder against a local git repository laid out like modded-nanogpt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copilot.core.errors import TrackError
from copilot.core.tracks import nanogpt_sync as ns
from tests.support.upstream_fixture import SEP, build_upstream_repo, modern_log, script


@pytest.fixture
def upstream(tmp_path: Path):
    return build_upstream_repo(tmp_path / "upstream-src")


def _check_against_fixture(index: ns.SyncIndex, cache: Path, upstream) -> None:
    keys = [r.key for r in index.records]
    assert keys == ["1", "3", "4", "5", "6", "14", "15", "21", "21-retime-1", "21-retime-2", "61", "64", "65", "66",
                    "86"]
    base = ns.nanogpt_cache_dir(cache)
    for key, exp in upstream.expected.items():
        rec = index.by_key(key)
        assert rec is not None, key
        assert rec.has_code is exp.has_code, key
        if exp.log_file:
            assert rec.log_file == exp.log_file, key
        if exp.steps is not None:
            assert (rec.steps, rec.val_loss) == (exp.steps, exp.val_loss), key
        if exp.has_code:
            assert rec.code_paths[0] == f"records/{key}/train_gpt.py"
            assert (base / rec.code_paths[0]).read_text() == exp.main, key
            companions = {Path(p).name: (base / p).read_text() for p in rec.code_paths[1:]}
            assert companions == exp.companions, key
        else:
            assert rec.code_paths == [] and rec.note, key


def test_sync_from_local_path(upstream, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    messages: list[str] = []
    index = ns.sync_records(path=upstream.path, cache_dir=cache, progress=lambda m, f: messages.append(m))
    _check_against_fixture(index, cache, upstream)
    assert index.commit == upstream.repo.head.commit.hexsha
    assert any("15 records, 11 with code" in m for m in messages)
    assert index.summary().startswith("15 records, 11 with code, from ")
    # Nothing was cloned: the user's clone is used as it is.
    assert not ns.default_clone_dir(cache).exists()


def test_index_json_round_trip_and_fields(upstream, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ns.sync_records(path=upstream.path, cache_dir=cache)
    raw = json.loads(ns.index_path(cache).read_text())
    by_key = {r["key"]: r for r in raw["records"]}
    assert by_key["4"]["time_s"] == pytest.approx(1338.0)
    assert by_key["1"]["time_s"] == pytest.approx(2700.0)
    assert by_key["21"]["time_s"] == pytest.approx(175.98)
    assert by_key["4"]["date"] == "2024-10-11"
    assert by_key["1"]["description"] == "llm.c baseline"  # link stripped
    assert by_key["21-retime-1"]["retiming"] is True and by_key["21"]["retiming"] is False
    assert by_key["21-retime-1"]["contributors"].endswith("with the updated rules")
    assert by_key["66"]["contributors"] is None and by_key["66"]["log_link"] is None
    assert by_key["86"]["note"] == "linked log is missing upstream"
    assert by_key["1"]["note"].startswith("log holds no training code")
    loaded = ns.load_index(cache)
    assert loaded is not None and loaded.primary(21).key == "21" and loaded.by_key("61").has_code
    # the code-free part of the log is kept for the reference curve
    log_copy = ns.nanogpt_cache_dir(cache) / by_key["5"]["log_copy"]
    assert log_copy.read_text().splitlines()[-1].startswith("step:8/8 val_loss:3.2741")
    assert "RECORD = 5" not in log_copy.read_text()


def test_sync_by_file_url_clone_then_update(upstream, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    index = ns.sync_records(url=upstream.url, cache_dir=cache)
    clone = ns.default_clone_dir(cache)
    assert (clone / ".git").is_dir() and index.clone_dir == str(clone)
    _check_against_fixture(index, cache, upstream)
    assert not index.stale

    key = upstream.add_record(90, "[A new record](https://example.invalid/90)")
    index2 = ns.sync_records(url=upstream.url, cache_dir=cache)
    assert index2.commit == upstream.repo.head.commit.hexsha != index.commit
    rec = index2.by_key(key)
    assert rec is not None and rec.has_code and rec.description == "A new record"
    assert (ns.nanogpt_cache_dir(cache) / rec.code_paths[0]).read_text() == upstream.expected[key].main


def test_update_failure_falls_back_to_the_cached_clone(upstream, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ns.sync_records(url=upstream.url, cache_dir=cache)
    messages: list[str] = []
    index = ns.sync_records(url=(tmp_path / "gone.git").as_uri(), cache_dir=cache,
                             progress=lambda m, f: messages.append(m))
    assert index.stale and len(index.records) == 15
    assert any("update failed" in m for m in messages)


def test_clone_failure_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(TrackError) as err:
        ns.sync_records(url=(tmp_path / "nowhere.git").as_uri(), cache_dir=tmp_path / "cache")
    message = str(err.value)
    assert "needs internet" in message and "--path" in message
    assert not ns.default_clone_dir(tmp_path / "cache").exists()


def test_path_without_readme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrackError, match="README"):
        ns.sync_records(path=tmp_path, cache_dir=tmp_path / "cache")


def test_extract_code_eras() -> None:
    code = script(7)
    assert ns.extract_code(modern_log(code)).main == code
    starts = f"{SEP}\n{code}{SEP}\nstep:1/2 train_time:1ms step_avg:1.00ms\n"
    got = ns.extract_code(starts)
    assert got.main == code and got.rest.startswith("step:1/2")
    assert ns.extract_code("s:0 tel:10.9\ns:1 tel:9.0\n") is None
    assert ns.extract_code(f"{SEP}\nno closing separator\n") is None
    # CRLF logs are read too
    assert ns.extract_code(modern_log(code).replace("\n", "\r\n")).main == code


def test_parse_record_table_cells() -> None:
    readme = (
        "# x\n\n## World record history\n\n| # | Record time | Description | Date | Log | Contributors |\n"
        "| - | - | - | - | - | - |\n"
        "| 2 | 31.4 minutes | [Tuned lr & rotary (RoPE)](https://x.invalid/a_(b)) | 06/06/24 | "
        "[log](records/060624_AdamW/f66.log) | @kellerjordan0 |\n"
        "92 | 0.665 minutes | Plain text, no link  | 08/30/26 | [log](records/track_1_short/2026-08-30_ANVIL2),"
        "[PR](https://github.com/x/pull/360) | @a and AI System [Recursive](https://r.invalid/)\n"
        "\n## Rules\n7 | 1 minutes | not | 01/01/25 | none | x\n"
    )
    rows = ns.parse_record_table(readme)
    assert [r.number for r in rows] == [2, 92]
    assert rows[0].description == "Tuned lr & rotary (RoPE)"
    assert rows[0].log_link == "records/060624_AdamW/f66.log"
    assert rows[1].log_link == "records/track_1_short/2026-08-30_ANVIL2"
    assert rows[1].contributors == "@a and AI System Recursive"
    assert rows[1].time_s == pytest.approx(39.9)
    assert ns.parse_time_s("5.8 hours") == pytest.approx(20880.0)
    assert ns.parse_time_s("25.95 minutes*") == pytest.approx(1557.0)
    assert ns.parse_date("05/28/24") == "2024-05-28" and ns.parse_date("-") is None
    with pytest.raises(TrackError):
        ns.parse_record_table("# nothing here\n")
