"""Colour themes: TOML files in the shipped themes/ folder (and optionally a user folder) → Textual `Theme`s."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from textual.theme import Theme

from copilot.core.errors import ConfigError
from copilot.resources import themes_dir

DEFAULT_THEME = "speedcopilot-dark"

# Chart series colours every theme defines under [variables]; fallbacks name built-in theme variables.
CHART_VARIABLES = {
    "chart-val": "primary",
    "chart-train": "secondary",
    "chart-reference": "accent",
    "chart-target": "success",
    "chart-projection": "warning",
}

_COLOUR_KEYS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground", "background",
                "surface", "panel", "boost")


def theme_from_mapping(data: dict[str, Any], source: str = "<theme>") -> Theme:
    """Build a Theme from a parsed TOML table; raises ConfigError naming the file when a key is wrong."""
    name = data.get("name")
    primary = data.get("primary")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{source}: a theme needs a `name = \"...\"`")
    if not isinstance(primary, str):
        raise ConfigError(f"{source}: theme {name!r} needs a `primary = \"#rrggbb\"` colour")
    kwargs: dict[str, Any] = {k: data[k] for k in _COLOUR_KEYS if k in data}
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ConfigError(f"{source}: [variables] must be a table of name = \"colour\"")
    for key, fallback in CHART_VARIABLES.items():
        variables.setdefault(key, kwargs.get(fallback) or primary)
    try:
        return Theme(
            name=name,
            dark=bool(data.get("dark", True)),
            luminosity_spread=float(data.get("luminosity_spread", 0.15)),
            text_alpha=float(data.get("text_alpha", 0.95)),
            variables={str(k): str(v) for k, v in variables.items()},
            **kwargs,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: theme {name!r} is invalid ({exc})") from None


def load_theme_file(path: Path) -> Theme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read theme {path}: {exc}") from None
    return theme_from_mapping(data, str(path))


def load_themes(*folders: Path) -> list[Theme]:
    """Every *.toml theme in the shipped folder, then in `folders` (a later file with the same name wins)."""
    themes: dict[str, Theme] = {}
    for folder in (themes_dir(), *folders):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            theme = load_theme_file(path)
            themes[theme.name] = theme
    return list(themes.values())
