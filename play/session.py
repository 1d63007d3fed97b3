"""What the window plays, and the worker thread that plays it (no pygame here).

`Session` owns the game (and, in compare mode, the ground-truth engine beside it); every
call that touches them goes through it, and in the window only the `Worker`'s thread
calls it: steps, resets, module switches and sampler-step changes run one after another
in the order the window asked for them, so the game is never used by two threads at once.
Each call answers with a `Result`: an immutable `Snapshot` of what to show, a message
for the panel, or the error to raise in the window's thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from maag.spec import Game, Step

from .minimap import minimap

MODULES = ("numerical", "spatial")
MAX_SAMPLER_STEPS = 16


@dataclass(frozen=True)
class Snapshot:
    """What the window shows after a step (copies: the game may move on meanwhile)."""

    frame: np.ndarray  # the game's frame (the model's in compare mode)
    values: dict[str, int]  # the values the step shows (none while numerical is off)
    events: tuple[str, ...]
    camera: tuple[int, int] | None
    count: int  # steps since the last reset
    seed: int
    step_ms: float = 0.0  # wall time of the game's last step
    timings: dict[str, float] = field(default_factory=dict)  # the model's parts, ms
    modules: dict[str, bool] = field(default_factory=dict)  # the model's modules: on?
    sampler_steps: int | None = None  # None: no sampler (an engine)
    minimap: np.ndarray | None = None
    reference: np.ndarray | None = None  # the engine's frame in compare mode
    reference_values: dict[str, int] = field(default_factory=dict)
    record_values: dict[str, int] = field(default_factory=dict)  # the record, shown or not
    last_sampler_steps: int | None = None  # the steps the last frame took (reveal: more)


@dataclass(frozen=True)
class Result:
    snapshot: Snapshot | None = None
    stepped: bool = False  # a new frame to show and record
    message: str | None = None
    error: BaseException | None = None


class Session:
    """The game (and optionally the engine it is compared with) behind the window."""

    def __init__(
        self,
        game: Game,
        start: Callable[[], Step],
        seed: int,
        reference: Game | None = None,
        minimap_size: tuple[int, int] | None = None,
    ):
        self.game, self.reference = game, reference
        self._start, self.seed = start, seed
        self.minimap_size = minimap_size
        self.count = 0
        self.last: Snapshot | None = None
        self.is_model = hasattr(game, "available")

    def start(self) -> Result:
        """The first frame: a reset or a loaded session (and the engine reset beside it)."""
        step = self._start()
        ref = self.reference.reset(self.seed) if self.reference else None
        return self._show(step, ref, 0.0)

    def step(self, action: int) -> Result:
        clock = time.perf_counter()
        step = self.game.step(action)
        ms = (time.perf_counter() - clock) * 1000
        ref = None
        if self.reference is not None:
            name = self.game.spec.actions[action]
            ref = self.reference.step(self.reference.spec.actions.index(name))
        self.count += 1
        return self._show(step, ref, ms)

    def reset(self) -> Result:
        """A new episode with the next seed."""
        self.seed += 1
        step = self.game.reset(self.seed)
        ref = self.reference.reset(self.seed) if self.reference else None
        self.count = 0
        result = self._show(step, ref, 0.0)
        return replace(result, message=f"reset (seed {self.seed})")

    def toggle(self, module: str) -> Result:
        """Switch a module of the model on or off (the next step uses the new setting)."""
        if not self.is_model:
            return self._say("the engine has no modules: N and M switch a model's")
        if module not in self.game.available:
            return self._say(f"this model has no {module} module")
        on = not getattr(self.game, module)
        self.game.switch(module, on)
        return self._refreshed(f"{module} module {'on' if on else 'off'}")

    def change_steps(self, delta: int) -> Result:
        """Raise or lower the sampler's steps per frame, within 1..MAX_SAMPLER_STEPS."""
        if not hasattr(self.game, "sampler_steps"):
            return self._say("the engine has no sampler: + and - change a model's steps")
        steps = min(max(self.game.sampler_steps + delta, 1), MAX_SAMPLER_STEPS)
        if steps == self.game.sampler_steps:
            bound = "max" if delta > 0 else "min"
            return self._refreshed(f"sampler steps already {steps} ({bound})")
        self.game.sampler_steps = steps
        return self._refreshed(f"sampler steps: {steps}")

    def _say(self, message: str) -> Result:
        return Result(message=message)

    def _refreshed(self, message: str) -> Result:
        """The last snapshot with the switches as they are now (no new frame)."""
        if self.last is None:
            return Result(message=message)
        self.last = replace(self.last, modules=self._modules(), sampler_steps=self._sampler_steps())
        return Result(self.last, message=message)

    def _modules(self) -> dict[str, bool]:
        available = getattr(self.game, "available", ())
        return {m: bool(getattr(self.game, m)) for m in MODULES if m in available}

    def _sampler_steps(self) -> int | None:
        return getattr(self.game, "sampler_steps", None)

    def _show(self, step: Step, ref: Step | None, ms: float) -> Result:
        game_map = getattr(self.game, "map", None)
        record = getattr(self.game, "record", None)
        image = None
        if self.minimap_size and game_map is not None and step.camera is not None:
            spec = self.game.spec
            view = (spec.frame_height - spec.hud_height, spec.frame_width)
            image = minimap(game_map, step.camera, view, self.minimap_size)
        self.last = Snapshot(
            frame=np.array(step.frame, np.uint8),
            values=dict(step.values),
            events=tuple(step.events),
            camera=step.camera,
            count=self.count,
            seed=self.seed,
            step_ms=ms,
            timings=dict(getattr(self.game, "timings", {}) or {}),
            modules=self._modules(),
            sampler_steps=self._sampler_steps(),
            minimap=image,
            reference=None if ref is None else np.array(ref.frame, np.uint8),
            reference_values={} if ref is None else dict(ref.values),
            record_values=dict(record.values) if record is not None else {},
            last_sampler_steps=getattr(self.game, "last_sampler_steps", None),
        )
        return Result(self.last, stepped=True)


class Worker:
    """Runs a Session's calls in one background thread, in the order they were submitted.

    Only the thread that created the worker submits and collects; `pending` counts the
    calls submitted and not yet collected, so `busy` says whether a step is under way.
    """

    def __init__(self, session: Session):
        self.session = session
        self.pending = 0
        self._jobs: queue.Queue = queue.Queue()
        self._results: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="maag-worker", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self.pending > 0

    def submit(self, method: str, *args: object) -> None:
        """Queue `session.<method>(*args)`."""
        self.pending += 1
        self._jobs.put((method, args))

    def collect(self, wait: bool = False) -> list[Result]:
        """The results ready now; with `wait`, all those of the calls submitted so far."""
        results = []
        while self.pending:
            try:
                result = self._results.get(block=wait)
            except queue.Empty:
                break
            self.pending -= 1
            results.append(result)
        return results

    def close(self) -> list[Result]:
        """Let the call under way finish, stop the thread; the results not yet collected."""
        self._jobs.put(None)
        self._thread.join()
        return self.collect()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            method, args = job
            try:
                result = getattr(self.session, method)(*args)
            except BaseException as exc:  # handed to the window's thread to raise there
                result = Result(error=exc)
            self._results.put(result)
