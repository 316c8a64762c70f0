"""Package exports resolved on first use (PEP 562), so importing one light module of a package (say the event
schema, for the app's first frame) does not import the whole package (git, the runners, the edit engine)."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(__getattr__, __dir__) for `package`: each exported name imported from its submodule (relative, or an
    absolute `copilot.…` module) when first read."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        absolute = module if module.startswith("copilot.") else f"{package}.{module}"
        value = getattr(importlib.import_module(absolute), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # the next read is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
