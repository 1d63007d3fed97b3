"""Traveler: a black block walks a row of cells; each cell entered first gets a building.

Frame 64x64: an 8-row HUD band with the score, the scene below it. Cells are 8 px wide and
the camera keeps the player's cell at columns 32-39, so a frame shows cells x-4 .. x+3.
Score = hi - lo of the explored interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maag.errors import MaagError
from maag.spec import (
    CustomMap,
    Effect,
    EventSpec,
    GameDefinition,
    GameSpec,
    Judgement,
    Reading,
    Step,
    ValueSpec,
)

from .common import Engine, RandomAgent, classify_pixels, colour_mask, hud_band, read_hud

SPEC = GameSpec(
    name="traveler",
    frame_height=64,
    frame_width=64,
    hud_height=8,
    actions=("noop", "left", "right"),
    values=(ValueSpec("score", low=0, high=9999, initial=0, hud_x=2),),
    events=(EventSpec("new_building", (Effect("score", "add", 1),)),),
    scroll=(8, 0),
    moves=((0, 0), (-1, 0), (1, 0)),
)
MOVES = {name: dx for name, (dx, _) in zip(SPEC.actions, SPEC.moves, strict=True)}

CELL = 8
VIEW_CELLS = 8  # cells x-4 .. x+3
PLAYER_SLOT = 4
GROUND_TOP = 56  # frame rows 56..63 are ground
PLAYER_TOP, PLAYER_LEFT, PLAYER_SIZE = 48, PLAYER_SLOT * CELL + 1, (8, 6)  # rows, cols
PLAYER_PIXEL = (PLAYER_LEFT, PLAYER_TOP)  # the block's top-left, where the reader finds it
SKY = (170, 210, 245)
GROUND = (110, 80, 50)
PLAYER = (0, 0, 0)
PALETTE = np.array(
    [
        (230, 50, 50),
        (245, 150, 30),
        (240, 225, 40),
        (60, 180, 60),
        (30, 160, 160),
        (50, 80, 220),
        (150, 60, 200),
        (240, 100, 190),
    ],
    dtype=np.uint8,
)
HEIGHTS = (16, 20, 24, 28, 32, 36, 40)  # all taller than the player, so colour stays visible
EMPTY = "empty"


def _cell_image(building: tuple[int, int] | None) -> np.ndarray:
    """One 8-px column of the scene (rows hud..63) with the building, if any."""
    col = np.empty((SPEC.frame_height - SPEC.hud_height, CELL, 3), dtype=np.uint8)
    col[:] = SKY
    col[GROUND_TOP - SPEC.hud_height :] = GROUND
    if building is not None:
        colour, height = building
        col[GROUND_TOP - SPEC.hud_height - height : GROUND_TOP - SPEC.hud_height, 1:7] = PALETTE[
            colour
        ]
    return col


_CELL_IMAGES = {None: _cell_image(None)} | {
    (c, h): _cell_image((c, h)) for c in range(len(PALETTE)) for h in HEIGHTS
}


class TravelerEngine(Engine):
    """The ground-truth Traveler."""

    spec = SPEC

    def _start(self) -> Step:
        self.x = 0
        self.buildings: dict[int, tuple[int, int]] = {0: self._new_building()}
        return self._observe(())

    def _advance(self, action: int) -> Step:
        self.x += MOVES[SPEC.actions[action]]
        events: tuple[str, ...] = ()
        if self.x not in self.buildings:
            self.buildings[self.x] = self._new_building()
            events = ("new_building",)
            self.values = SPEC.apply_events(self.values, events)
        return self._observe(events)

    def _new_building(self) -> tuple[int, int]:
        return int(self.rng.integers(len(PALETTE))), HEIGHTS[int(self.rng.integers(len(HEIGHTS)))]

    def _observe(self, events: tuple[str, ...]) -> Step:
        frame = np.empty((SPEC.frame_height, SPEC.frame_width, 3), dtype=np.uint8)
        frame[: SPEC.hud_height] = hud_band(SPEC, self.values)
        first = self.x - PLAYER_SLOT
        frame[SPEC.hud_height :] = np.concatenate(
            [_CELL_IMAGES[self.buildings.get(c)] for c in range(first, first + VIEW_CELLS)],
            axis=1,
        )
        rows, cols = PLAYER_SIZE
        frame[PLAYER_TOP : PLAYER_TOP + rows, PLAYER_LEFT : PLAYER_LEFT + cols] = PLAYER
        return Step(frame, dict(self.values), events, (first * CELL, 0))


@dataclass(frozen=True)
class TravelerReading(Reading):
    """HUD values, the player's top-left pixel, and per visible cell slot (0..7) its
    content: EMPTY, (palette index, height), or None where it cannot be read."""

    player: tuple[int, int] | None
    cells: tuple[tuple[int, int] | str | None, ...]

    @property
    def readable(self) -> bool:
        return self.values is not None and self.player is not None and None not in self.cells


_SCENE_COLOURS = np.concatenate([PALETTE, np.array([SKY, PLAYER], dtype=np.uint8)])
_SKY_LABEL, _PLAYER_LABEL = len(PALETTE), len(PALETTE) + 1


def read_frame(frame: np.ndarray) -> TravelerReading:
    """Read a Traveler frame; illegible parts come back as None, never guessed."""
    values = read_hud(SPEC, frame)
    if not colour_mask(frame[GROUND_TOP:], GROUND).all():
        return TravelerReading(values, None, (None,) * VIEW_CELLS)
    labels = classify_pixels(frame[SPEC.hud_height : GROUND_TOP], _SCENE_COLOURS)
    player = _read_player(labels == _PLAYER_LABEL)
    cells = tuple(_read_cell(labels[:, s * CELL : (s + 1) * CELL]) for s in range(VIEW_CELLS))
    return TravelerReading(values, player, cells)


def _read_player(mask: np.ndarray) -> tuple[int, int] | None:
    rows, cols = np.nonzero(mask)
    if rows.size != PLAYER_SIZE[0] * PLAYER_SIZE[1]:
        return None
    top, left = int(rows.min()), int(cols.min())
    if rows.max() - top + 1 != PLAYER_SIZE[0] or cols.max() - left + 1 != PLAYER_SIZE[1]:
        return None
    return left, top + SPEC.hud_height


def _read_cell(labels: np.ndarray) -> tuple[int, int] | str | None:
    """A cell column's labels (rows hud..55, 8 cols) -> EMPTY, (colour, height) or None."""
    if (labels[:, [0, CELL - 1]] != _SKY_LABEL).any():
        return None
    inner = labels[:, 1 : CELL - 1]
    building_rows = ~(inner == _SKY_LABEL).all(axis=1)
    height = int(building_rows.sum())
    if height == 0:
        return EMPTY
    if height not in HEIGHTS or not building_rows[-height:].all():
        return None
    body = inner[-height:]
    colours = np.unique(body[body != _PLAYER_LABEL])
    if colours.size != 1 or colours[0] >= len(PALETTE):
        return None
    return int(colours[0]), height


class Wanderer:
    """Long runs one way, then back: many revisits in both directions, a few pauses."""

    def __init__(self, spec: GameSpec, seed: int):
        self.rng = np.random.default_rng(seed)
        self.direction = 1 if self.rng.random() < 0.5 else -1
        self.remaining = 0

    def act(self, step: Step) -> int:
        if self.remaining == 0:
            self.remaining = int(self.rng.integers(4, 40))
            if self.rng.random() < 0.7:
                self.direction = -self.direction
        self.remaining -= 1
        if self.rng.random() < 0.08:
            return SPEC.actions.index("noop")
        return SPEC.actions.index("right" if self.direction > 0 else "left")


_SPRITES = np.zeros((SPEC.frame_height, SPEC.frame_width), dtype=bool)
_SPRITES[PLAYER_TOP - 1 : GROUND_TOP, PLAYER_LEFT - 1 : PLAYER_LEFT + 7] = True  # not the ground
_SPRITES.flags.writeable = False


def sprite_mask(frame: np.ndarray) -> np.ndarray:
    """The player's block (widened by a pixel, but not into the ground, which the block
    never covers): it moves with the camera, the map must not keep it. It always stands at
    the same place in the view."""
    return _SPRITES


COLOUR_NAMES = ("red", "orange", "yellow", "green", "teal", "blue", "purple", "pink")
SCENE_HEIGHT = SPEC.frame_height - SPEC.hud_height


def custom_map(path: str) -> CustomMap:
    """A user's Traveler map for the spatial module to start from.

    - `.json`: {"buildings": {"CELL": [COLOUR, HEIGHT], ...}}, COLOUR a palette index or
      name (red, orange, yellow, green, teal, blue, purple, pink), HEIGHT one of 16..40 in
      steps of 4: drawn as the game draws them.
    - `.png`: a painted strip 56 px tall (the scene under the HUD, ground included) whose
      left edge is cell 1, just right of the start cell; transparent pixels stay unpainted.
    """
    import json

    import imageio.v3 as iio

    try:
        if path.endswith(".json"):
            cells = {int(c): b for c, b in json.loads(Path(path).read_text())["buildings"].items()}
            first, last = min(cells), max(cells)
            image = np.concatenate(
                [
                    _CELL_IMAGES[_building(cells[c]) if c in cells else None]
                    for c in range(first, last + 1)
                ],
                axis=1,
            )
            mask = np.repeat([c in cells for c in range(first, last + 1)], CELL)[None].repeat(
                SCENE_HEIGHT, 0
            )
            return CustomMap(image, (first * CELL, 0), mask)
        pixels = iio.imread(path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MaagError(f"map {path} cannot be read: {exc}") from None
    if pixels.ndim != 3 or pixels.shape[0] != SCENE_HEIGHT or pixels.shape[2] not in (3, 4):
        raise MaagError(
            f"map {path} must be an RGB(A) image {SCENE_HEIGHT} px tall, got {pixels.shape}"
        )
    mask = pixels[..., 3] > 0 if pixels.shape[2] == 4 else np.ones(pixels.shape[:2], bool)
    return CustomMap(np.ascontiguousarray(pixels[..., :3]), (CELL, 0), mask)


def _building(entry) -> tuple[int, int]:
    colour, height = entry
    if isinstance(colour, str):
        if colour not in COLOUR_NAMES:
            raise ValueError(f"unknown colour {colour!r} (choose from {', '.join(COLOUR_NAMES)})")
        colour = COLOUR_NAMES.index(colour)
    if not 0 <= colour < len(PALETTE) or height not in HEIGHTS:
        raise ValueError(f"no building of colour {colour} and height {height}")
    return int(colour), int(height)


class TravelerReferee:
    """Traveler's rules on screen: the player moves as the action says (never blocked), a
    first visit to a cell is a new building (+1), the scene scrolls by one cell per move."""

    def __init__(self) -> None:
        self.x = 0
        self.visited = {0}
        self.values = SPEC.initial_values()

    def start(self, reading: TravelerReading) -> Judgement:
        self.previous = reading
        return self._judgement((), reading.player == PLAYER_PIXEL)

    def judge(self, action: int, reading: TravelerReading) -> Judgement:
        move = MOVES[SPEC.actions[action]]
        self.x += move
        events = () if self.x in self.visited else ("new_building",)
        self.visited.add(self.x)
        self.values = SPEC.apply_events(self.values, events)
        moved = reading.player == PLAYER_PIXEL and move in _best_shifts(self.previous, reading)
        self.previous = reading
        return self._judgement(events, moved)

    def may_change(self, place: int, before: object, after: object) -> bool:
        return False  # a cell cannot be explored out of view: content never changes

    def _judgement(self, events: tuple[str, ...], moved: bool) -> Judgement:
        first = self.x - PLAYER_SLOT
        scene_rows = slice(SPEC.hud_height, GROUND_TOP)
        return Judgement(
            events=events,
            values=dict(self.values),
            moved_as_ruled=moved,
            visible={first + s: self.previous.cells[s] for s in range(VIEW_CELLS)},
            regions={  # the player's cell is partly hidden by the block: not compared
                first + s: (scene_rows, slice(s * CELL, (s + 1) * CELL))
                for s in range(VIEW_CELLS)
                if s != PLAYER_SLOT
            },
        )


def _best_shifts(before: TravelerReading, after: TravelerReading) -> set[int]:
    """The scroll(s) -1, 0, +1 (cells) that best explain `after` from `before`."""
    scores = {}
    for shift in (-1, 0, 1):
        pairs = [
            (after.cells[s], before.cells[s + shift])
            for s in range(VIEW_CELLS)
            if 0 <= s + shift < VIEW_CELLS and s != PLAYER_SLOT
        ]
        scores[shift] = sum(a is not None and a == b for a, b in pairs) / len(pairs)
    best = max(scores.values())
    return {shift for shift, score in scores.items() if score == best and best > 0}


GAME = GameDefinition(
    spec=SPEC,
    engine=TravelerEngine,
    read_frame=read_frame,
    agents={"wanderer": Wanderer, "random": RandomAgent},
    referee=TravelerReferee,
    sprite_mask=sprite_mask,
    custom_map=custom_map,
)
