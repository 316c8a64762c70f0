"""Settings: defaults < user config (TOML) < ./speedcopilot.toml < environment < command-line flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import platformdirs
import tomli_w

from copilot.core.errors import ConfigError

APP_NAME = "speedcopilot"
PROJECT_CONFIG = "speedcopilot.toml"
SECRET_FIELDS = frozenset({"api_key"})

# USD per 1M tokens (input, output). Users extend or override this table in their config under [prices].
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}


@dataclass(frozen=True)
class Settings:
    track: str = "auto"  # auto | micro | nanogpt
    provider: str = "auto"  # auto (openai when a key is set, else oracle) | openai | oracle
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = None
    request_timeout_s: float = 120.0
    request_deadline_s: float = 180.0  # per suggestion, edit retries included: a hanging endpoint is heard of in 3 min
    max_retries: int = 3
    max_tokens: int | None = None  # output limit per answer (None: the endpoint's default)
    edit_retries: int = 2
    edit_format: str = "auto"  # auto (by model) | search_replace | udiff | whole | patch | tools
    edit_formats: Mapping[str, str] = field(default_factory=dict)  # model-name prefix -> format, overrides auto
    edit_max_line_chars: int = 1000
    hint_levels: tuple[int, ...] = ()
    session_dir: Path = Path("sessions")
    min_free_mb: float = 16.0  # free space a command that writes sessions wants before it starts
    data_dir: Path | None = None  # None: platform cache dir
    cache_dir: Path | None = None  # None: platform cache dir
    runner: str = "local"  # local | ssh://[user@]host[:port]/path | slurm://[partition][?…]
    parallel: int = 1  # autonomous search: nodes whose runs may be live at once (`auto --parallel`)
    gpus: int | None = None
    hang_timeout_s: float = 300.0
    run_timeout_s: float | None = None
    run_env_pass: tuple[str, ...] = ()  # environment variables training runs may see beyond the allow-list
    agent_guard_override: bool = False  # autonomous mode may train commits the integrity guard blocks (logged)
    theme: str = "speedcopilot-dark"
    participant: str | None = None
    hints_dir: Path | None = None
    target_val_loss: float | None = None  # None: the track's own target; set, every session/baseline uses it
    stop_at_target: bool = False  # co-pilot runs end at the target (autonomous runs and baselines always do)
    prices: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    sources: tuple[str, ...] = ()  # where values came from, for `config show`

    def edit_format_for(self, model: str) -> str:
        """The edit format the prompt asks `model` for: [edit_formats] by longest matching prefix, else
        edit_format, else the built-in default for the model's kind."""
        from copilot.core.edits.model import FORMATS, default_edit_format

        for name in (model, model.rsplit("/", 1)[-1]):
            prefixes = [key for key in self.edit_formats if name.startswith(key)]
            if prefixes:
                return self.edit_formats[max(prefixes, key=len)]
        if self.edit_format in FORMATS:
            return self.edit_format
        return default_edit_format(model)

    def resolved_cache_dir(self) -> Path:
        return self.cache_dir or Path(platformdirs.user_cache_dir(APP_NAME))

    def resolved_data_dir(self) -> Path:
        return self.data_dir or self.resolved_cache_dir() / "data"

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain values, with secrets masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = mask_secret(str(value))
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in value.items()}
            out[f.name] = value
        out["resolved_data_dir"] = str(self.resolved_data_dir())
        out["resolved_cache_dir"] = str(self.resolved_cache_dir())
        return out


def mask_secret(value: str) -> str:
    return "****" if len(value) < 12 else f"{value[:3]}…{value[-4:]}"


def user_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


_ENV_MAP = {
    "OPENAI_API_KEY": "api_key",
    "OPENAI_BASE_URL": "base_url",
    "SPEEDCOPILOT_API_KEY": "api_key",
    "SPEEDCOPILOT_BASE_URL": "base_url",
    "SPEEDCOPILOT_MODEL": "model",
    "SPEEDCOPILOT_PROVIDER": "provider",
    "SPEEDCOPILOT_TRACK": "track",
    "SPEEDCOPILOT_SESSION_DIR": "session_dir",
    "SPEEDCOPILOT_DATA_DIR": "data_dir",
    "SPEEDCOPILOT_CACHE_DIR": "cache_dir",
    "SPEEDCOPILOT_RUNNER": "runner",
    "SPEEDCOPILOT_PARALLEL": "parallel",
    "SPEEDCOPILOT_GPUS": "gpus",
    "SPEEDCOPILOT_HANG_TIMEOUT_S": "hang_timeout_s",
    "SPEEDCOPILOT_RUN_TIMEOUT_S": "run_timeout_s",
    "SPEEDCOPILOT_RUN_ENV_PASS": "run_env_pass",
    "SPEEDCOPILOT_AGENT_GUARD_OVERRIDE": "agent_guard_override",
    "SPEEDCOPILOT_THEME": "theme",
    "SPEEDCOPILOT_HINTS": "hint_levels",
    "SPEEDCOPILOT_HINTS_DIR": "hints_dir",
    "SPEEDCOPILOT_PARTICIPANT": "participant",
    "SPEEDCOPILOT_EDIT_FORMAT": "edit_format",
    "SPEEDCOPILOT_MAX_TOKENS": "max_tokens",
    "SPEEDCOPILOT_REQUEST_TIMEOUT_S": "request_timeout_s",
    "SPEEDCOPILOT_REQUEST_DEADLINE_S": "request_deadline_s",
    "SPEEDCOPILOT_MIN_FREE_MB": "min_free_mb",
    "SPEEDCOPILOT_TARGET": "target_val_loss",
    "SPEEDCOPILOT_STOP_AT_TARGET": "stop_at_target",
}


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Merge every layer; flags whose value is None are ignored."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    values: dict[str, Any] = {}
    sources: list[str] = ["defaults"]
    for path in (user_config_path(), cwd / PROJECT_CONFIG):
        if path.is_file():
            values.update(_read_toml(path))
            sources.append(str(path))
    env_values = {_ENV_MAP[k]: v for k, v in env.items() if k in _ENV_MAP and v != ""}
    if env_values:
        values.update(env_values)
        sources.append("environment")
    flag_values = {k: v for k, v in (flags or {}).items() if v is not None}
    if flag_values:
        values.update(flag_values)
        sources.append("flags")
    return _build(values, tuple(sources))


def save_user_setting(key: str, value: Any) -> Path:
    """Persist one setting (e.g. the theme chosen in the app) in the user config file."""
    if key in SECRET_FIELDS:
        raise ConfigError("refusing to write a secret into the config file; use OPENAI_API_KEY instead")
    path = user_config_path()
    current = _read_raw_toml(path) if path.is_file() else {}
    current[key] = str(value) if isinstance(value, Path) else value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(current))
    return path


def _read_raw_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix or delete it") from None


def _read_toml(path: Path) -> dict[str, Any]:
    raw = _read_raw_toml(path)
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(raw) - known - {"prices"})
    if "edit_formats" in raw and not isinstance(raw["edit_formats"], dict):
        raise ConfigError(f"{path}: edit_formats must be a table of model-name prefix = format")
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if "prices" in raw:
        merged = dict(DEFAULT_PRICES)
        for model, pair in raw["prices"].items():
            if not (isinstance(pair, list) and len(pair) == 2):
                raise ConfigError(f"{path}: prices.{model} must be [input_usd_per_1M, output_usd_per_1M]")
            merged[model] = (float(pair[0]), float(pair[1]))
        raw["prices"] = merged
    return raw


def _build(values: dict[str, Any], sources: tuple[str, ...]) -> Settings:
    kwargs: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name not in values or f.name == "sources":
            continue
        kwargs[f.name] = _coerce(f.name, values[f.name])
    return replace(Settings(), **kwargs, sources=sources)


def _coerce(name: str, value: Any) -> Any:
    try:
        if name in ("session_dir", "data_dir", "cache_dir", "hints_dir"):
            return Path(value).expanduser() if value is not None else None
        if name == "stop_at_target":
            return _boolean(value, name)
        if name in _POSITIVE_FLOATS:
            return _at_least(name, float(value), 0.0, strict=True) if value is not None else None
        if name in ("min_free_mb",):
            return _at_least(name, float(value), 0.0)
        if name in ("max_retries", "edit_retries"):
            return _at_least(name, int(value), 0)
        if name in ("gpus", "max_tokens", "edit_max_line_chars"):
            return _at_least(name, int(value), 1) if value is not None else None
        if name == "parallel":
            count = int(value)
            if count < 1:
                raise ConfigError(f"setting parallel={value!r}: give 1 or more nodes at once")
            return count
        if name == "hint_levels":
            return parse_hint_levels(value)
        if name == "agent_guard_override":
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return lowered in ("1", "true", "yes", "on")
            return bool(value)
        if name == "run_env_pass":
            names = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(n).strip() for n in names if str(n).strip())
        if name == "edit_format":
            return _edit_format(str(value), name)
        if name == "edit_formats":
            return {str(k): _edit_format(str(v), f"edit_formats.{k}") for k, v in dict(value).items()}
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name}={value!r} has the wrong type") from None
    return value


_POSITIVE_FLOATS = ("request_timeout_s", "request_deadline_s", "hang_timeout_s", "run_timeout_s", "target_val_loss")


def _at_least(name: str, value: float, low: float, strict: bool = False) -> Any:
    """A timeout of -5 s or a GPU count of 0 is refused where it is set, not found out by a run that ends at once."""
    if value != value or value < low or (strict and value == low) or value == float("inf"):
        bound = f"more than {low:g}" if strict else f"{low:g} or more"
        raise ConfigError(f"setting {name}={value!r} must be {bound}")
    return value


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"setting {name}={value!r} must be true or false")


def _edit_format(value: str, name: str) -> str:
    from copilot.core.edits.model import FORMATS

    choice = value.strip().lower().replace("-", "_")
    aliases = {"diff": "udiff", "unified_diff": "udiff", "searchreplace": "search_replace", "blocks": "search_replace",
               "whole_file": "whole", "apply_patch": "patch", "tool_calls": "tools"}
    choice = aliases.get(choice, choice)
    if choice != "auto" and choice not in FORMATS:
        raise ConfigError(f"setting {name}={value!r}: the edit format must be auto or one of {', '.join(FORMATS)}")
    return choice


def parse_hint_levels(value: Any) -> tuple[int, ...]:
    """'0' or '' -> (); '1,2' -> (1, 2); lists pass through. Levels are 1..3."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace("+", ",").split(",") if p.strip()]
        levels = [int(p) for p in parts]
    else:
        levels = [int(v) for v in value]
    bad = [lv for lv in levels if lv not in (0, 1, 2, 3)]
    if bad:
        raise ConfigError(f"hint levels must be 0..3, got {bad}")
    return tuple(sorted({lv for lv in levels if lv != 0}))
