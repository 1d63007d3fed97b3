"""Pieces every game shares: the pixel font and HUD band, colour matching, the random agent."""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from functools import lru_cache

import numpy as np

from maag.errors import MaagError
from maag.spec import Game, GameSpec, Step

# A pixel of a generated frame "is" a reference colour when no channel is further than this.
COLOUR_TOLERANCE = 48

HUD_BACKGROUND = (24, 24, 40)
HUD_INK = (255, 255, 255)
GLYPH_TOP = 2  # glyph rows in the HUD band: GLYPH_TOP .. GLYPH_TOP + 4
GLYPH_PITCH = 4  # 3 px glyph + 1 px gap

_GLYPH_ROWS = {
    0: ("111", "101", "101", "101", "111"),
    1: ("010", "110", "010", "010", "111"),
    2: ("111", "001", "111", "100", "111"),
    3: ("111", "001", "011", "001", "111"),
    4: ("101", "101", "111", "001", "001"),
    5: ("111", "100", "111", "001", "111"),
    6: ("111", "100", "111", "101", "111"),
    7: ("111", "001", "010", "010", "010"),
    8: ("111", "101", "111", "101", "111"),
    9: ("111", "101", "111", "001", "111"),
}
GLYPHS = {d: np.array([[c == "1" for c in row] for row in rows]) for d, rows in _GLYPH_ROWS.items()}
_DIGIT_OF_PATTERN = {g.tobytes(): d for d, g in GLYPHS.items()}


def colour_mask(pixels: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Boolean mask of the pixels within COLOUR_TOLERANCE of `colour` on every channel."""
    diff = np.abs(pixels.astype(np.int16) - np.array(colour, dtype=np.int16))
    return diff.max(axis=-1) <= COLOUR_TOLERANCE


def classify_pixels(pixels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Index of the nearest palette colour per pixel, or -1 where none is within tolerance."""
    diff = np.abs(pixels[..., None, :].astype(np.int16) - palette.astype(np.int16))
    dist = diff.max(axis=-1)
    labels = dist.argmin(axis=-1)
    labels[dist.min(axis=-1) > COLOUR_TOLERANCE] = -1
    return labels


def near_any_colour(pixels: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Boolean mask of the pixels (..., 3) uint8 within COLOUR_TOLERANCE of some colour of
    `colours` (K <= 64, 3) on every channel: `classify_pixels(pixels, colours) >= 0`, by
    one table look-up per channel instead of a distance to every colour."""
    tables = _near_tables(np.ascontiguousarray(colours, np.uint8).tobytes())
    near = tables[0][pixels[..., 0]] & tables[1][pixels[..., 1]] & tables[2][pixels[..., 2]]
    return near != 0


@lru_cache(maxsize=64)
def _near_tables(colours: bytes) -> np.ndarray:
    """(3, 256) uint64: per channel and value, a bit for each colour within tolerance."""
    rgb = np.frombuffer(colours, np.uint8).reshape(-1, 3).astype(np.int16)
    if len(rgb) > 64:
        raise ValueError(f"near_any_colour takes up to 64 colours, got {len(rgb)}")
    values = np.arange(256, dtype=np.int16)
    close = np.abs(values[None, :, None] - rgb.T[:, None, :]) <= COLOUR_TOLERANCE  # (3, 256, K)
    bits = np.left_shift(np.uint64(1), np.arange(len(rgb), dtype=np.uint64))
    tables = np.bitwise_or.reduce(np.where(close, bits, np.uint64(0)), axis=-1)
    tables.flags.writeable = False
    return tables


def hud_band(spec: GameSpec, values: dict[str, int]) -> np.ndarray:
    """The HUD band (hud_height, width, 3) showing `values` as zero-padded digits."""
    return _hud_band(spec, tuple(values[v.name] for v in spec.values))


@lru_cache(maxsize=4096)
def _hud_band(spec: GameSpec, numbers: tuple[int, ...]) -> np.ndarray:
    band = np.empty((spec.hud_height, spec.frame_width, 3), dtype=np.uint8)
    band[:] = HUD_BACKGROUND
    for v, number in zip(spec.values, numbers, strict=True):
        for i, ch in enumerate(str(number).zfill(v.digits)):
            x = v.hud_x + i * GLYPH_PITCH
            cell = band[GLYPH_TOP : GLYPH_TOP + 5, x : x + 3]
            cell[GLYPHS[int(ch)]] = HUD_INK
    band.flags.writeable = False
    return band


def read_hud(spec: GameSpec, frame: np.ndarray) -> dict[str, int] | None:
    """The values shown in the HUD band, or None unless every pixel reads cleanly."""
    band = frame[: spec.hud_height]
    ink = colour_mask(band, HUD_INK)
    if not (ink | colour_mask(band, HUD_BACKGROUND)).all():
        return None
    expected_ink_area = np.zeros_like(ink)
    values = {}
    for v in spec.values:
        digits = []
        for i in range(v.digits):
            x = v.hud_x + i * GLYPH_PITCH
            digit = _DIGIT_OF_PATTERN.get(ink[GLYPH_TOP : GLYPH_TOP + 5, x : x + 3].tobytes())
            if digit is None:
                return None
            digits.append(digit)
            expected_ink_area[GLYPH_TOP : GLYPH_TOP + 5, x : x + 3] = True
        number = int("".join(map(str, digits)))
        if not v.low <= number <= v.high:
            return None
        values[v.name] = number
    if ink[~expected_ink_area].any():  # ink outside the digit boxes: not a clean HUD
        return None
    return values


class RandomAgent:
    """Uniformly random actions; every game has it under the name `random`."""

    def __init__(self, spec: GameSpec, seed: int):
        self.num_actions = len(spec.actions)
        self.rng = np.random.default_rng(seed)

    def act(self, step: Step) -> int:
        return int(self.rng.integers(self.num_actions))


class Engine(Game):
    """A ground-truth engine: seeding, the values, and the protocol's checks.

    Subclasses set `spec` and implement `_start()` (new episode, values already initial)
    and `_advance(action)` (one step with a checked action index), which reads the step's
    random draws (spec.chance) from `self.chance`.
    """

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.rng: np.random.Generator | None = None
        self.chance: tuple[int, ...] = ()

    def reset(self, seed: int | None = None) -> Step:
        if seed is not None or self.rng is None:
            self.rng = np.random.default_rng(self.seed if seed is None else seed)
        self.values = self.spec.initial_values()
        return self._start()

    def step(self, action: int, chance: tuple[int, ...] | None = None) -> Step:
        """One step; `chance`: the step's random draws (spec.chance), where they are not to
        come from the engine's seed (the seeded draws are then not taken)."""
        if self.rng is None:
            raise MaagError("call reset() before step()")
        action = self.spec.check_action(action)
        if chance is None:
            chance = tuple(int(self.rng.integers(n)) for n in self.spec.chance)
        elif len(chance) != len(self.spec.chance) or not all(
            0 <= c < n for c, n in zip(chance, self.spec.chance, strict=True)
        ):
            raise MaagError(f"chance {chance} is not a draw of {self.spec.chance}")
        self.chance = tuple(chance)
        return dataclasses.replace(self._advance(action), chance=self.chance)

    def alternative(self, action: int) -> Step | None:
        """The step `action` would lead to had its events come out otherwise, everything
        else as the rules put it (Pong: where the ball reaches a paddle face, a return
        instead of a miss or a miss instead of a return); None where the game offers no
        such step. The engine itself does not move. Training pairs of this
        and the true step teach a generator to draw the events it is told."""
        if self.rng is None:
            raise MaagError("call reset() before alternative()")
        return self._alternative(self.spec.check_action(action))

    def _alternative(self, action: int) -> Step | None:
        return None

    @abstractmethod
    def _start(self) -> Step: ...

    @abstractmethod
    def _advance(self, action: int) -> Step: ...
