"""The pygame window: the game view scaled up, a side panel, keyboard control.

The window never waits for the network: a `Worker` thread runs the game's steps (torch
releases the GIL while it computes) and the window keeps reading keys and drawing at the
target frame rate. At every frame, when no step is under way, the worker gets the next
one with the action chosen now (the key held, else a key tapped since the last step);
a step slower than a frame leaves the last frame shown (frames are dropped, the window
does not freeze). Switches, sampler-step changes and resets go to the same worker and run
between two steps. With `lockstep` the window waits for every step instead.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maag.errors import MaagError
from maag.spec import Game, Step

from .recorder import Recorder
from .session import MAX_SAMPLER_STEPS, Result, Session, Snapshot, Worker

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame

PANEL_WIDTH = 272
PAD = 16
GAP = 8  # window pixels between the model's and the engine's view in compare mode
LABEL_BAR = 26  # the labels above the views in compare mode
RECORD_GAP = 4  # game pixels between the two views in a compare recording
MINIMAP_HEIGHT = 84
MESSAGE_SECONDS = 4.0
BG = (10, 10, 14)
PANEL_BG = (20, 20, 28)
PANEL_TEXT = (230, 230, 230)
PANEL_DIM = (140, 140, 160)
PANEL_ON = (120, 220, 140)
PANEL_OFF = (220, 120, 110)
PANEL_NOTE = (255, 214, 90)
SEPARATOR = (48, 48, 62)
RECORD_RED = (230, 50, 50)

KEY_ACTIONS = {
    pygame.K_LEFT: "left",
    pygame.K_a: "left",
    pygame.K_RIGHT: "right",
    pygame.K_d: "right",
    pygame.K_UP: "up",
    pygame.K_w: "up",
    pygame.K_DOWN: "down",
    pygame.K_s: "down",
}
KEY_COMMANDS = {
    pygame.K_ESCAPE: "quit",
    pygame.K_q: "quit",
    pygame.K_r: "reset",
    pygame.K_h: "help",
    pygame.K_F12: "record",
    pygame.K_n: "numerical",
    pygame.K_m: "spatial",
    pygame.K_PLUS: "more steps",
    pygame.K_EQUALS: "more steps",
    pygame.K_KP_PLUS: "more steps",
    pygame.K_MINUS: "fewer steps",
    pygame.K_KP_MINUS: "fewer steps",
}
HELP = (
    ("arrows / WASD", "move (hold, or tap once)"),
    ("R", "reset: a new episode (next seed)"),
    ("N", "numerical module on / off"),
    ("M", "spatial module on / off"),
    ("+ / -", f"sampler steps (1 to {MAX_SAMPLER_STEPS})"),
    ("F12", "start / stop recording a GIF"),
    ("H", "show / hide this help"),
    ("Esc / Q", "quit"),
)
TIMING_NAMES = {
    "generator": "gen",
    "logicnet": "logic",
    "observer": "obs",
    "spatial": "map",
    "inputs": "in",
}


def action_for_key(game: Game, key: int) -> int | None:
    """The action index a key stands for in this game, or None if it means nothing here."""
    name = KEY_ACTIONS.get(key)
    return game.spec.actions.index(name) if name in game.spec.actions else None


class Controls:
    """Keyboard events to actions and commands.

    `handle(event)` returns the command an event asks for ("quit", "reset", "help",
    "record", "numerical", "spatial", "more steps", "fewer steps") or None, and keeps track
    of the direction keys; `action()` is the action for the next step: the most recent
    direction key held, else one pressed since the last step (a tap between two steps
    still counts), else None (noop).
    """

    def __init__(self, game: Game):
        self.game = game
        self.held: list[int] = []  # direction keys held, most recent last
        self.tapped: int | None = None

    def handle(self, event: pygame.event.Event) -> str | None:
        if event.type == pygame.QUIT:
            return "quit"
        if event.type == getattr(pygame, "WINDOWFOCUSLOST", -1):
            self.held.clear()  # a key released in another window never comes back up
            return None
        if event.type == pygame.KEYDOWN:
            action = action_for_key(self.game, event.key)
            if action is not None:
                if event.key in self.held:
                    self.held.remove(event.key)
                self.held.append(event.key)
                self.tapped = action
                return None
            return KEY_COMMANDS.get(event.key)
        if event.type == pygame.KEYUP and event.key in self.held:
            self.held.remove(event.key)
        return None

    def action(self) -> int | None:
        """The action for the step starting now (and forget the tap)."""
        action = action_for_key(self.game, self.held[-1]) if self.held else self.tapped
        self.tapped = None
        return action


@dataclass(frozen=True)
class Layout:
    """Where things go in the window, in window pixels."""

    view: tuple[int, int]  # (width, height) of one scaled-up game view
    compare: bool

    @classmethod
    def for_game(cls, game: Game, scale: int, compare: bool) -> Layout:
        spec = game.spec
        return cls((spec.frame_width * scale, spec.frame_height * scale), compare)

    @property
    def top(self) -> int:
        return LABEL_BAR if self.compare else 0

    @property
    def reference_x(self) -> int:
        return self.view[0] + GAP

    @property
    def panel_x(self) -> int:
        return self.reference_x + self.view[0] if self.compare else self.view[0]

    @property
    def size(self) -> tuple[int, int]:
        return self.panel_x + PANEL_WIDTH, max(self.top + self.view[1], 540)

    @property
    def minimap_size(self) -> tuple[int, int]:
        """(height, width) of the minimap image."""
        return MINIMAP_HEIGHT, PANEL_WIDTH - 2 * PAD


class Rate:
    """Events per second over the last `window` seconds."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self.times: deque[float] = deque()

    def tick(self, now: float | None = None) -> None:
        self.times.append(time.perf_counter() if now is None else now)

    def per_second(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        while self.times and self.times[0] < now - self.window:
            self.times.popleft()
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / max(self.times[-1] - self.times[0], 1e-6)


def compose(snapshot: Snapshot) -> np.ndarray:
    """The frame to record: the game's, or in compare mode the model's and the engine's
    side by side."""
    if snapshot.reference is None:
        return snapshot.frame
    h = snapshot.frame.shape[0]
    gap = np.full((h, RECORD_GAP, 3), 40, np.uint8)
    return np.concatenate([snapshot.frame, gap, snapshot.reference], axis=1)


def clip_path(folder: Path | str = ".", now: float | None = None, taken=()) -> Path:
    """A fresh maag-YYYYmmdd-HHMMSS.gif in `folder` (with -2, -3... when the name exists
    or is in `taken`)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    path = Path(folder) / f"maag-{stamp}.gif"
    n = 2
    while path.exists() or path in taken:
        path = Path(folder) / f"maag-{stamp}-{n}.gif"
        n += 1
    return path


class Clips:
    """F12 recordings: one open at a time, written in a background thread when stopped."""

    def __init__(self, fps: float):
        self.fps = fps
        self.open: Recorder | None = None
        self.started = 0.0
        self.writers: list[threading.Thread] = []
        self.notes: list[str] = []  # messages from the writers (list.append is atomic)
        self.paths: set[Path] = set()  # the names given (a file may not be written yet)

    def toggle(self, frame: np.ndarray | None) -> str:
        if self.open is None:
            self.open = Recorder(clip_path(taken=self.paths), self.fps)
            self.paths.add(self.open.path)
            self.started = time.perf_counter()
            if frame is not None:
                self.open.add(frame)
            return f"recording {self.open.path.name}\nF12 stops it"
        recorder, self.open = self.open, None
        writer = threading.Thread(target=self._write, args=(recorder,), daemon=True)
        writer.start()
        self.writers.append(writer)
        return f"writing {recorder.path.name}"

    def add(self, frame: np.ndarray) -> None:
        if self.open is not None:
            self.open.add(frame)

    def close(self) -> None:
        """Finish the open recording and every write under way (the files are complete)."""
        if self.open is not None:
            recorder, self.open = self.open, None
            self._write(recorder)
        for writer in self.writers:
            writer.join()

    def _write(self, recorder: Recorder) -> None:
        try:
            self.notes.append(f"saved {recorder.close()}")
        except MaagError as exc:
            self.notes.append(str(exc))


def _open_window(size: tuple[int, int], title: str) -> pygame.Surface:
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("SDL_VIDEODRIVER")
    ):
        raise MaagError("no display available: use --headless (e.g. --headless --record out.gif)")
    try:
        pygame.display.init()
        pygame.font.init()
        screen = pygame.display.set_mode(size)
    except pygame.error as exc:
        raise MaagError(f"cannot open a window ({exc}): use --headless") from None
    pygame.display.set_caption(title)
    return screen


class Painter:
    """Draws a snapshot: the view(s), the side panel, the help overlay."""

    def __init__(self, screen: pygame.Surface, layout: Layout, title: str, source: str):
        self.screen, self.layout = screen, layout
        self.title, self.source = title, source
        self.big = pygame.font.Font(None, 32)
        self.value = pygame.font.Font(None, 28)
        self.text = pygame.font.Font(None, 22)
        self.y = 0

    def view(self, frame: np.ndarray, x: int) -> None:
        surface = pygame.surfarray.make_surface(np.ascontiguousarray(frame.swapaxes(0, 1)))
        scaled = pygame.transform.scale(surface, self.layout.view)  # nearest-neighbour
        self.screen.blit(scaled, (x, self.layout.top))

    def draw(self, shot: Snapshot, status: dict) -> None:
        layout = self.layout
        self.screen.fill(BG)
        self.view(shot.frame, 0)
        if layout.compare:
            self.view(shot.reference, layout.reference_x)
            for x, label in ((0, self.source), (layout.reference_x, "engine (ground truth)")):
                self.screen.blit(self.text.render(label, True, PANEL_TEXT), (x + 8, 6))
        self.panel(shot, status)
        if status["help"]:
            self.help()

    def line(self, text: str, font=None, colour=PANEL_DIM, x: int = 0) -> pygame.Rect:
        font = font or self.text
        surface = font.render(text, True, colour)
        rect = self.screen.blit(surface, (self.layout.panel_x + PAD + x, self.y))
        return rect

    def newline(self, font=None, extra: int = 2) -> None:
        self.y += (font or self.text).get_linesize() + extra

    def separator(self) -> None:
        self.y += 4
        x = self.layout.panel_x + PAD
        pygame.draw.line(self.screen, SEPARATOR, (x, self.y), (x + PANEL_WIDTH - 2 * PAD, self.y))
        self.y += 7

    def pair(self, left: str, right: str, colour=PANEL_TEXT, key: str = "") -> None:
        """`left` then `right` at a fixed column, the key that changes it at the edge."""
        self.line(left, colour=PANEL_DIM)
        self.line(right, colour=colour, x=118)
        if key:
            width = self.text.size(key)[0]
            self.line(key, colour=PANEL_DIM, x=PANEL_WIDTH - 2 * PAD - width)
        self.newline()

    def panel(self, shot: Snapshot, status: dict) -> None:
        height = self.layout.size[1]
        x0 = self.layout.panel_x
        pygame.draw.rect(self.screen, PANEL_BG, (x0, 0, PANEL_WIDTH, height))
        self.y = 12
        self.line(self.title, self.big, PANEL_TEXT)
        self.newline(self.big)
        self.line(self.source)
        self.newline()
        if status["recording"]:
            pygame.draw.circle(self.screen, RECORD_RED, (x0 + PAD + 6, self.y + 7), 6)
            self.line(status["recording"], colour=RECORD_RED, x=18)
            self.newline()
        self.separator()
        values, colour = shot.values, PANEL_TEXT
        if not values and shot.record_values:  # numerical off: the record, not shown to it
            values, colour = shot.record_values, PANEL_DIM
        for name, value in values.items():
            self.line(f"{name}", self.value, PANEL_DIM)
            self.line(f"{value}", self.value, colour, x=118)
            if name in shot.reference_values:
                self.line(f"engine {shot.reference_values[name]}", x=176)
            elif colour == PANEL_DIM:
                self.line("(record)", x=176)
            self.newline(self.value)
        if not values:
            self.line("no values (no record)")
            self.newline()
        self.line(f"step {shot.count}   seed {shot.seed}")
        self.newline()
        events = ", ".join(dict.fromkeys(status["events"])) or "-"
        self.line(self.fit(f"last event: {events}"))
        self.newline()
        self.separator()
        self.pair("display", f"{status['fps']:.1f} fps")
        self.pair("game", f"{status['steps_per_s']:.1f} steps/s")
        self.pair("step", f"{shot.step_ms:.0f} ms" + (", in ms:" if shot.timings else ""))
        parts = [  # the biggest first: what is cut off at the panel's edge matters least
            f"{TIMING_NAMES.get(part, part)} {ms:.{0 if ms >= 10 else 1}f}"
            for part, ms in sorted(shot.timings.items(), key=lambda item: -item[1])
            if ms >= 0.05
        ]
        if parts:
            self.line(self.fit(" · ".join(parts)), x=8)
            self.newline()
        self.separator()
        for module, key in (("numerical", "N"), ("spatial", "M")):
            if module in shot.modules:
                on = shot.modules[module]
                self.pair(module, "on" if on else "off", PANEL_ON if on else PANEL_OFF, key)
            else:
                self.pair(module, "n/a", PANEL_DIM, key)
        steps = "-" if shot.sampler_steps is None else str(shot.sampler_steps)
        steps = f"{steps} step{'' if steps == '1' else 's'}"
        if shot.last_sampler_steps and shot.last_sampler_steps != shot.sampler_steps:
            steps += f" (last {shot.last_sampler_steps})"  # more where the map knew nothing
        self.pair("sampler", steps, key="+/-")
        self.separator()
        self.minimap(shot)
        self.separator()
        for text in self.wrap(status["message"] or ""):
            self.line(text, colour=PANEL_NOTE)
            self.newline()
        self.y = height - self.text.get_linesize() - 10
        self.line("H help   Esc/Q quit")

    def minimap(self, shot: Snapshot) -> None:
        h, w = self.layout.minimap_size
        x = self.layout.panel_x + PAD
        self.line("map" if shot.minimap is not None else "map: none (no spatial module)")
        self.newline()
        if shot.minimap is not None:
            image = np.ascontiguousarray(shot.minimap.swapaxes(0, 1))
            self.screen.blit(pygame.surfarray.make_surface(image), (x, self.y))
        else:
            pygame.draw.rect(self.screen, (14, 14, 20), (x, self.y, w, h))
        self.y += h + 2

    def fit(self, text: str) -> str:
        """`text` cut to the panel's width."""
        limit = PANEL_WIDTH - 2 * PAD
        if self.text.size(text)[0] <= limit:
            return text
        while text and self.text.size(text + "...")[0] > limit:
            text = text[:-1]
        return text + "..."

    def wrap(self, text: str, lines: int = 3) -> list[str]:
        """`text` in at most `lines` lines of the panel's width (a newline starts a line)."""
        limit, out = PANEL_WIDTH - 2 * PAD, []
        for paragraph in text.split("\n"):
            current = ""
            for word in paragraph.split():
                trial = f"{current} {word}".strip()
                if self.text.size(trial)[0] <= limit or not current:
                    current = trial
                else:
                    out.append(current)
                    current = word
            if current:
                out.append(current)
        return [self.fit(t) for t in out[:lines]]

    def help(self) -> None:
        width, height = self.layout.size
        shade = pygame.Surface((width, height), pygame.SRCALPHA)
        shade.fill((0, 0, 0, 190))
        self.screen.blit(shade, (0, 0))
        key_width = max(self.value.size(k)[0] for k, _ in HELP) + 24
        text_width = max(self.value.size(t)[0] for _, t in HELP)
        line = self.value.get_linesize() + 6
        box_w = key_width + text_width + 48
        box_h = line * (len(HELP) + 2) + 24
        x, y = (width - box_w) // 2, (height - box_h) // 2
        pygame.draw.rect(self.screen, PANEL_BG, (x, y, box_w, box_h), border_radius=8)
        pygame.draw.rect(self.screen, SEPARATOR, (x, y, box_w, box_h), 2, border_radius=8)
        x, y = x + 24, y + 16
        self.screen.blit(self.big.render("Keys", True, PANEL_TEXT), (x, y))
        y += line + 8
        for key, text in HELP:
            self.screen.blit(self.value.render(key, True, PANEL_NOTE), (x, y))
            self.screen.blit(self.value.render(text, True, PANEL_TEXT), (x + key_width, y))
            y += line
        note = "H closes this help"
        self.screen.blit(self.text.render(note, True, PANEL_DIM), (x, y + 6))


def run_window(
    game: Game,
    start: Callable[[], Step],
    seed: int,
    fps: float,
    scale: int = 8,
    title: str = "maag",
    source: str = "engine",
    recorder: Recorder | None = None,
    *,
    reference: Game | None = None,
    lockstep: bool = False,
    max_frames: int | None = None,
) -> None:
    """Play `game` with the keyboard until Esc/Q or the window closes (or `max_frames`
    frames, for tests). `reference`: a ground-truth engine shown beside the game and given
    the same actions (compare mode). `recorder` gets every new frame shown (side by side
    in compare mode); the frame of a step under way when the window closes is kept too."""
    layout = Layout.for_game(game, scale, reference is not None)
    screen = _open_window(layout.size, title)
    painter = Painter(screen, layout, game.spec.name, source)
    clock = pygame.time.Clock()
    controls = Controls(game)
    worker = Worker(Session(game, start, seed, reference, layout.minimap_size))
    clips = Clips(fps)
    noop = game.spec.actions.index("noop")
    steps, shown = Rate(), [None]
    status = {"help": False, "message": "", "recording": "", "events": (), "fps": 0.0}
    message_until = [0.0]

    def say(text: str) -> None:
        status["message"] = text
        message_until[0] = time.perf_counter() + MESSAGE_SECONDS

    def absorb(results: list[Result], raise_errors: bool = True) -> None:
        for result in results:
            if result.error is not None:
                if raise_errors:
                    raise result.error
                continue
            if result.message:
                say(result.message)
            if result.snapshot is None:
                continue
            shown[0] = result.snapshot
            if result.stepped:
                steps.tick()
                frame = compose(result.snapshot)
                if recorder is not None:
                    recorder.add(frame)
                clips.add(frame)
                if result.snapshot.count == 0:
                    status["events"] = ()
                elif result.snapshot.events:
                    status["events"] = result.snapshot.events

    frames = 0
    try:
        worker.submit("start")
        absorb(worker.collect(wait=True))
        while max_frames is None or frames < max_frames:
            absorb(worker.collect())
            for event in pygame.event.get():
                command = controls.handle(event)
                if command == "quit":
                    return
                if command == "help":
                    status["help"] = not status["help"]
                elif command == "record":
                    say(clips.toggle(compose(shown[0]) if shown[0] is not None else None))
                elif command == "reset":
                    worker.submit("reset")
                elif command in ("numerical", "spatial"):
                    worker.submit("toggle", command)
                elif command in ("more steps", "fewer steps"):
                    worker.submit("change_steps", 1 if command == "more steps" else -1)
            if not worker.busy:
                action = controls.action()
                worker.submit("step", noop if action is None else action)
            if lockstep:
                absorb(worker.collect(wait=True))
            while clips.notes:
                say(clips.notes.pop(0))
            if time.perf_counter() > message_until[0]:
                status["message"] = ""
            status["fps"] = clock.get_fps()
            status["steps_per_s"] = steps.per_second()
            status["recording"] = ""
            if clips.open is not None:
                seconds = int(time.perf_counter() - clips.started)
                status["recording"] = f"REC {seconds // 60}:{seconds % 60:02d}"
            painter.draw(shown[0], status)
            pygame.display.flip()
            frames += 1
            clock.tick(fps)
    finally:
        absorb(worker.close(), raise_errors=False)
        clips.close()
        pygame.quit()
