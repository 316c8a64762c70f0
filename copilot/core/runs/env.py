"""What a training run gets from the user's environment, and what of its output may leave the run folder.

A run's environment is built from an allow-list — what a process needs to start (PATH, HOME, locale, temp
dirs, an active virtualenv or conda env) plus the track's own knobs (MICRO_*, NANOGPT_*, CUDA_*, TORCH_*,
OMP_*, NCCL_*, …) — never by copying this process's environment: API keys (OPENAI_API_KEY, any *_KEY, *_TOKEN,
*SECRET*, *PASSWORD*) stay in the app unless the user names them (run_env_pass in the config).

Every known secret value (the configured API key and the values of secret-looking variables) is scrubbed from
run output before it becomes an event, result.json, or a line in the app.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

# Exact names a process commonly needs.
_BASE_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR", "TEMP", "TMP",
    "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHASHSEED", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "LD_LIBRARY_PATH",
    "LIBRARY_PATH", "CPATH", "CC", "CXX", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "HF_HOME",
    "HF_HUB_OFFLINE", "HF_HUB_CACHE", "TRANSFORMERS_OFFLINE", "TIKTOKEN_CACHE_DIR", "TRITON_CACHE_DIR",
    "DATA_PATH", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "SLURM_JOB_ID",
})
# Prefixes of the tracks' knobs and of the libraries training uses.
_KNOB_PREFIXES = ("LC_", "MICRO_", "NANOGPT_", "CUDA_", "TORCH", "OMP_", "MKL_", "OPENBLAS_", "NCCL_", "TRITON_",
                  "CONDA_", "PYTORCH_", "SPEEDCOPILOT_MICRO", "KMP_", "GOMP_", "CUBLAS_", "CUDNN_", "XLA_")
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
# Variables that look like secrets but are not (no value worth hiding).
_NOT_SECRET = frozenset({"SSH_AUTH_SOCK", "PYTHONHASHSEED", "KEYBOARD", "GPG_AGENT_INFO"})
MIN_SECRET_CHARS = 8  # shorter values would scrub ordinary words


def is_secret_name(name: str) -> bool:
    return name not in _NOT_SECRET and bool(_SECRET_NAME.search(name))


def allowed(name: str) -> bool:
    if name in _BASE_NAMES:
        return True
    return name.startswith(_KNOB_PREFIXES) and not is_secret_name(name)


def run_environment(track_env: Mapping[str, str], *, source: Mapping[str, str] | None = None,
                    passed: Iterable[str] = ()) -> dict[str, str]:
    """The explicit environment of a run: the allow-listed part of `source` (default os.environ), the names the
    user passes on purpose, then the track's own variables (which win)."""
    source = os.environ if source is None else source
    keep = set(passed)
    env = {k: v for k, v in source.items() if allowed(k) or k in keep}
    env.update(track_env)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def secret_values(source: Mapping[str, str] | None = None, extra: Iterable[str | None] = ()) -> list[str]:
    """Values worth scrubbing: those of secret-looking variables, and any extra (the configured API key)."""
    source = os.environ if source is None else source
    values = {v for k, v in source.items() if is_secret_name(k) and v}
    values.update(v for v in extra if v)
    return sorted((v for v in values if len(v) >= MIN_SECRET_CHARS), key=len, reverse=True)


@dataclass(frozen=True)
class Scrubber:
    """Replaces known secret values in text with '***' (longest first, so overlapping values go whole)."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def from_environment(cls, extra: Iterable[str | None] = (), source: Mapping[str, str] | None = None
                         ) -> "Scrubber":
        return cls(tuple(secret_values(source, extra)))

    def __call__(self, text: str) -> str:
        if not self.secrets or not text:
            return text
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def lines(self, lines: Iterable[str]) -> list[str]:
        return [self(line) for line in lines]

    def value(self, value: object) -> object:
        """Scrub strings anywhere inside a JSON-like value."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value
