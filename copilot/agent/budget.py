"""Budgets in the currencies a human-vs-agent comparison uses: nodes, wall time, LLM tokens and dollars,
accelerator-seconds.

BudgetUsage is a fold over the session log (like SessionState), so a resumed agent counts what the killed one
spent. Wall time is *active* time: the segments between session_started/session_resumed and session_ended (or
the last event before the next resume when the process was killed), so time spent dead is not charged.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from copilot.core.errors import ConfigError
from copilot.core.session import schema as s
from copilot.core.session.events import Event


@dataclass(frozen=True)
class Budget:
    nodes: int | None = 20  # search nodes (the baseline root run is not one)
    wall_minutes: float | None = None
    tokens: int | None = None  # prompt + completion tokens
    usd: float | None = None
    accel_seconds: float | None = None  # GPU-seconds (gpus × run wall time); CPU-seconds on the micro track

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is not None and (not isinstance(value, (int, float)) or value < 0 or math.isnan(value)):
                raise ConfigError(f"budget {name} must be a non-negative number, got {value!r}")

    def exhausted(self, usage: "BudgetUsage", now: float | None = None, live_accel_s: float = 0.0) -> str | None:
        """Why no further work may start (a short reason naming the budget), or None."""
        if self.nodes is not None and usage.nodes >= self.nodes:
            return f"nodes: {usage.nodes} of {self.nodes} used"
        if self.wall_minutes is not None and usage.wall_s(now) >= self.wall_minutes * 60:
            return f"wall time: {usage.wall_s(now) / 60:.1f} of {self.wall_minutes:g} min used"
        if self.tokens is not None and usage.tokens >= self.tokens:
            return f"tokens: {usage.tokens} of {self.tokens} used"
        if self.usd is not None and usage.usd >= self.usd:
            return f"usd: ${usage.usd:.4f} of ${self.usd:g} used"
        accel = usage.accel_seconds + live_accel_s
        if self.accel_seconds is not None and accel >= self.accel_seconds:
            return f"accelerator time: {accel:.1f} of {self.accel_seconds:g} s used"
        return None

    def run_limit_hit(self, usage: "BudgetUsage", now: float | None, live_accel_s: float) -> str | None:
        """The budgets that a run in flight can exhaust by itself (wall time and accelerator time)."""
        if self.wall_minutes is not None and usage.wall_s(now) >= self.wall_minutes * 60:
            return f"wall time: {usage.wall_s(now) / 60:.1f} of {self.wall_minutes:g} min used"
        accel = usage.accel_seconds + live_accel_s
        if self.accel_seconds is not None and accel >= self.accel_seconds:
            return f"accelerator time: {accel:.1f} of {self.accel_seconds:g} s used"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Budget":
        data = data or {}
        return cls(nodes=data.get("nodes"), wall_minutes=data.get("wall_minutes"), tokens=data.get("tokens"),
                   usd=data.get("usd"), accel_seconds=data.get("accel_seconds"))

    def describe(self, usage: "BudgetUsage", now: float | None = None) -> str:
        parts = [f"nodes {usage.nodes}" + (f"/{self.nodes}" if self.nodes is not None else "")]
        wall = usage.wall_s(now) / 60
        parts.append(f"{wall:.1f}" + (f"/{self.wall_minutes:g}" if self.wall_minutes is not None else "") + " min")
        parts.append(f"{usage.tokens} tok" + (f"/{self.tokens}" if self.tokens is not None else ""))
        usd = f"${usage.usd:.4f}" + (f"/${self.usd:g}" if self.usd is not None else "")
        parts.append(usd + (" (some costs unknown)" if usage.usd_unknown else ""))
        parts.append(f"{usage.accel_seconds:.0f}"
                     + (f"/{self.accel_seconds:g}" if self.accel_seconds is not None else "") + " accel-s")
        return " · ".join(parts)


_COUNTED = frozenset({"session_started", "session_resumed", "session_ended", "node_created", "suggestion_received",
                      "suggestion_failed", "run_finished"})


@dataclass
class BudgetUsage:
    nodes: int = 0
    tokens: int = 0
    usd: float = 0.0
    usd_unknown: bool = False  # some suggestion used tokens but its price was unknown
    accel_seconds: float = 0.0
    active_s: float = 0.0  # closed segments of activity
    segment_start: float | None = None
    last_t: float | None = None
    gpus: int = 1
    _runs_counted: set[str] = field(default_factory=set)

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> "BudgetUsage":
        usage = cls()
        for event in events:
            usage.apply(event)
        return usage

    def apply(self, e: Event) -> None:
        if e.type not in _COUNTED:  # metric events and the like: no typed body needed
            self.last_t = e.t
            return
        body = e.body
        if isinstance(body, (s.SessionStarted, s.SessionResumed)):
            if self.segment_start is not None and self.last_t is not None:  # killed: close at the last event
                self.active_s += max(0.0, self.last_t - self.segment_start)
            self.segment_start = e.t
            if isinstance(body, s.SessionStarted):
                self.gpus = max(int(body.gpus or 1), 1)
        elif isinstance(body, s.SessionEnded) and self.segment_start is not None:
            self.active_s += max(0.0, e.t - self.segment_start)
            self.segment_start = None
        elif isinstance(body, s.NodeCreated) and body.node_id != 0:
            self.nodes += 1
        elif isinstance(body, (s.SuggestionReceived, s.SuggestionFailed)):
            used = body.prompt_tokens + body.completion_tokens
            self.tokens += used
            if body.cost_usd is not None:
                self.usd += body.cost_usd
            elif used:
                self.usd_unknown = True
        elif isinstance(body, s.RunFinished) and body.run_id not in self._runs_counted:
            self._runs_counted.add(body.run_id)  # a run finished twice (re-attach) is charged once
            accel = body.accelerator_seconds
            if accel is None:
                accel = self.gpus * (body.wall_time_s or 0.0)
            self.accel_seconds += accel
        self.last_t = e.t

    def wall_s(self, now: float | None = None) -> float:
        """Active wall seconds so far (the open segment runs to `now`)."""
        if self.segment_start is None:
            return self.active_s
        end = time.time() if now is None else now
        return self.active_s + max(0.0, end - self.segment_start)

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        return {"nodes": self.nodes, "tokens": self.tokens, "usd": round(self.usd, 6),
                "usd_unknown": self.usd_unknown, "accel_seconds": round(self.accel_seconds, 3),
                "wall_minutes": round(self.wall_s(now) / 60, 3)}
