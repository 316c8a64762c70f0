"""Test isolation: every test gets its own config, cache, data and session folders, and no real API key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith(("SPEEDCOPILOT_", "OPENAI_")):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "speedcopilot-test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@speedcopilot.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "speedcopilot-test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@speedcopilot.invalid")
    return home
