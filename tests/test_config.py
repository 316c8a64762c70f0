"""Settings layers: defaults < user file < ./speedcopilot.toml < environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot.config import load_settings, save_user_setting, user_config_path
from copilot.core.errors import ConfigError


def test_layers_override_in_order(tmp_path: Path) -> None:
    user = user_config_path()
    user.parent.mkdir(parents=True)
    user.write_text('model = "from-user"\ntheme = "user-theme"\nhang_timeout_s = 10\n')
    (tmp_path / "speedcopilot.toml").write_text('model = "from-project"\n')
    env = {"SPEEDCOPILOT_MODEL": "from-env", "OPENAI_API_KEY": "sk-fake-abcdefghijklmnop-1234"}
    settings = load_settings({"model": None, "hint_levels": "1,2"}, env=env, cwd=tmp_path)
    assert settings.model == "from-env"
    assert settings.theme == "user-theme"
    assert settings.hang_timeout_s == 10.0
    assert settings.hint_levels == (1, 2)
    assert load_settings({"model": "from-flag"}, env=env, cwd=tmp_path).model == "from-flag"
    assert load_settings({}, env={}, cwd=tmp_path).model == "from-project"


def test_secrets_are_masked(tmp_path: Path) -> None:
    settings = load_settings({}, env={"OPENAI_API_KEY": "sk-fake-abcdefghijklmnop-1234"}, cwd=tmp_path)
    shown = settings.masked()
    assert "abcdefghijklmnop" not in str(shown)
    assert shown["api_key"].startswith("sk-")


def test_bad_config_gives_clear_error(tmp_path: Path) -> None:
    (tmp_path / "speedcopilot.toml").write_text("model = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, env={}, cwd=tmp_path)
    (tmp_path / "speedcopilot.toml").write_text('modle = "typo"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({}, env={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="hint levels"):
        load_settings({"hint_levels": "5"}, env={}, cwd=tmp_path.parent)


def test_save_user_setting_round_trips_and_refuses_secrets(tmp_path: Path) -> None:
    save_user_setting("theme", "speedcopilot-light")
    assert load_settings({}, env={}, cwd=tmp_path).theme == "speedcopilot-light"
    with pytest.raises(ConfigError):
        save_user_setting("api_key", "sk-x")


def test_agent_guard_override_and_run_env_pass_come_from_the_environment(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    env = {"SPEEDCOPILOT_AGENT_GUARD_OVERRIDE": "yes", "SPEEDCOPILOT_RUN_ENV_PASS": "WANDB_API_KEY, HF_TOKEN"}
    settings = load_settings(env=env, cwd=tmp_path)
    assert settings.agent_guard_override is True and settings.run_env_pass == ("WANDB_API_KEY", "HF_TOKEN")
    assert load_settings(env={}, cwd=tmp_path).agent_guard_override is False  # refused unless asked for
    with pytest.raises(ConfigError, match="agent_guard_override"):
        load_settings(env={"SPEEDCOPILOT_AGENT_GUARD_OVERRIDE": "perhaps"}, cwd=tmp_path)


def test_the_readme_configuration_example_loads_and_names_only_real_variables(tmp_path: Path) -> None:
    import re

    from copilot.config import _ENV_MAP
    from copilot.core.research.baselines import STORE_ENV  # the baseline store's path, read where it is used

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "speedcopilot.toml").write_text(example)
    settings = load_settings({}, env={}, cwd=tmp_path)
    assert settings.parallel == 1 and settings.request_deadline_s == 180.0 and settings.min_free_mb == 16.0
    assert settings.edit_format == "auto" and settings.stop_at_target is False
    listed = re.search(r"SPEEDCOPILOT_\{([A-Z_,]+)\}", section)
    assert listed is not None
    names = [f"SPEEDCOPILOT_{name}" for name in listed.group(1).split(",")]
    assert [n for n in names if n not in _ENV_MAP and n != STORE_ENV] == []
