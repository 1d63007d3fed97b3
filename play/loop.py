"""The play loop without a display: a scripted agent drives any Game (engine or model)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from maag.spec import Agent, Game, Step

from .recorder import Recorder


@dataclass
class PlaySummary:
    steps: int = 0
    event_counts: dict[str, int] = field(default_factory=dict)
    last: Step | None = None


def run_headless(
    game: Game,
    agent: Agent,
    steps: int,
    start: Callable[[], Step],
    recorder: Recorder | None = None,
) -> PlaySummary:
    """Play `steps` steps from `start()` (a reset or a loaded session), recording every
    frame shown when asked."""
    summary = PlaySummary()
    step = start()
    if recorder:
        recorder.add(step.frame)
    for _ in range(steps):
        step = game.step(agent.act(step))
        summary.steps += 1
        for name in step.events:
            summary.event_counts[name] = summary.event_counts.get(name, 0) + 1
        if recorder:
            recorder.add(step.frame)
    summary.last = step
    return summary
