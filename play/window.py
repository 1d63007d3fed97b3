"""The pygame window: the game view scaled up, a side panel, keyboard control."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import numpy as np

from maag.errors import MaagError
from maag.spec import Game, Step

from .recorder import Recorder

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame

PANEL_WIDTH = 240
PANEL_BG = (20, 20, 28)
PANEL_TEXT = (230, 230, 230)
PANEL_DIM = (140, 140, 160)
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
QUIT_KEYS = (pygame.K_ESCAPE, pygame.K_q)


def action_for_key(game: Game, key: int) -> int | None:
    """The action index a key stands for in this game, or None if it means nothing here."""
    name = KEY_ACTIONS.get(key)
    return game.spec.actions.index(name) if name in game.spec.actions else None


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


def run_window(
    game: Game,
    start: Callable[[], Step],
    seed: int,
    fps: float,
    scale: int = 8,
    title: str = "maag",
    source: str = "engine",
    recorder: Recorder | None = None,
) -> None:
    """Play `game` with the keyboard until Esc/Q or the window closes."""
    spec = game.spec
    view = (spec.frame_width * scale, spec.frame_height * scale)
    screen = _open_window((view[0] + PANEL_WIDTH, view[1]), title)
    font = pygame.font.Font(None, 24)
    small = pygame.font.Font(None, 20)
    clock = pygame.time.Clock()
    noop = spec.actions.index("noop")
    step = start()
    held: list[int] = []  # direction keys held, most recent last
    tapped: int | None = None  # a key pressed and released between two ticks still counts
    step_ms, count, recent_events = 0.0, 0, ()
    try:
        while True:
            for event in pygame.event.get():
                if event.type == pygame.QUIT or (
                    event.type == pygame.KEYDOWN and event.key in QUIT_KEYS
                ):
                    return
                if event.type == pygame.KEYDOWN and event.key == pygame.K_r:
                    seed += 1
                    step, count, recent_events = game.reset(seed), 0, ()
                elif event.type == pygame.KEYDOWN and action_for_key(game, event.key) is not None:
                    held.append(event.key)
                    tapped = action_for_key(game, event.key)
                elif event.type == pygame.KEYUP and event.key in held:
                    held.remove(event.key)
            action = action_for_key(game, held[-1]) if held else tapped
            tapped = None
            start = time.perf_counter()
            step = game.step(noop if action is None else action)
            step_ms = (time.perf_counter() - start) * 1000
            count += 1
            recent_events = step.events or recent_events
            if recorder:
                recorder.add(step.frame)
            surface = pygame.surfarray.make_surface(np.ascontiguousarray(step.frame.swapaxes(0, 1)))
            screen.blit(pygame.transform.scale(surface, view), (0, 0))
            lines = [
                (font, spec.name, PANEL_TEXT),
                (small, source, PANEL_DIM),
                (small, "", PANEL_DIM),
                *[(font, f"{k}: {v}", PANEL_TEXT) for k, v in step.values.items()],
                *([] if step.values else [(small, "no record (baseline)", PANEL_DIM)]),
                (small, "", PANEL_DIM),
                (small, f"step {count}", PANEL_DIM),
                (small, f"events: {', '.join(recent_events) or '-'}", PANEL_DIM),
                (small, f"{clock.get_fps():.0f} fps, {step_ms:.1f} ms/step", PANEL_DIM),
                (small, "", PANEL_DIM),
                (small, "arrows/WASD move", PANEL_DIM),
                (small, "R reset, Esc/Q quit", PANEL_DIM),
            ]
            pygame.draw.rect(screen, PANEL_BG, (view[0], 0, PANEL_WIDTH, view[1]))
            y = 16
            for line_font, text, colour in lines:
                screen.blit(line_font.render(text, True, colour), (view[0] + 16, y))
                y += line_font.get_linesize() + 2
            pygame.display.flip()
            clock.tick(fps)
    finally:
        pygame.quit()
