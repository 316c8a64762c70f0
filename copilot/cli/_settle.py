"""What every command that opens a session says about the runs the session left open (see core/session/repair)."""

from __future__ import annotations

from typing import Any, Iterable

from copilot.cli._common import plain


async def settle_and_report(session: Any, run_ids: Iterable[str], out: Any, *, follow: bool,
                            following_why: str = "") -> list[Any]:
    """Record the end of the session's open runs whose process has ended (with `follow`, wait for the others
    too, saying so first), one line per run."""
    from copilot.core.session.repair import settle_runs

    run_ids = list(run_ids)
    if not run_ids:
        return []
    if follow:
        for run_id in run_ids:
            if session.run_is_alive(run_id):
                out.print(plain(f"run {run_id} of this session is still training (re-attached); following it to "
                                f"its end{following_why}"))
    endings = await settle_runs(session, run_ids, follow=follow)
    for ending in endings:
        out.print(plain(ending_line(ending, session.id)))
    return endings


def ending_line(ending: Any, session_id: str) -> str:
    if ending.problem is not None:
        return f"run {ending.run_id}: cannot be re-attached ({ending.problem})"
    if ending.still_training:
        return (f"run {ending.run_id} is still training; its end is recorded by whoever opens the session next "
                f"(or wait for it: `speedcopilot sessions repair {session_id} --wait`)")
    by = f" ({ending.recorded_by})" if ending.recorded_by else ""
    return f"run {ending.run_id} ended: {ending.outcome}, recorded{by}"
