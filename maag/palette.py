"""A game's palette: the colours of its HUD band and of its view, and snapping to them.

Pixel-art games draw with a few flat colours, and the HUD's (digits on a dark band) are
not the world's. A generated frame snapped band by band to its palette cannot carry a
slightly-off colour into the next step, nor a world colour into the HUD or back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from maag.errors import MaagError

MAX_COLOURS = 64  # per band: more than this and a game is not drawn with a palette
Frames = TypeVar("Frames", np.ndarray, torch.Tensor)


def _colours(value: Any, band: str) -> np.ndarray:
    """A band's colours as (K, 3) uint8, or MaagError naming what is wrong."""
    array = np.asarray(value)
    if array.size == 0:
        return np.zeros((0, 3), np.uint8)
    if array.ndim != 2 or array.shape[1] != 3 or len(array) > MAX_COLOURS:
        raise MaagError(
            f"a palette's {band} colours are up to {MAX_COLOURS} RGB triples, "
            f"got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() > 255:
        raise MaagError(f"a palette's {band} colours are integers 0..255")
    return np.ascontiguousarray(array, dtype=np.uint8)


def nearest_colour(pixels: Frames, colours: np.ndarray) -> Frames:
    """`pixels` (..., 3) uint8, a numpy array or a tensor on any device, with each one
    replaced by its nearest of `colours` (K, 3) by squared RGB distance (ties: the first);
    of the type it was given, on its device."""
    given = torch.as_tensor(pixels)
    table = torch.as_tensor(colours).to(given.device)
    flat, float_table = given.reshape(-1, 3).float(), table.float()
    # |p - c|^2 = |p|^2 - 2 p.c + |c|^2, and |p|^2 is the same for every colour; in float32
    # (no autocast) every term is an integer below 2**24: exact, so ties break alike anywhere
    with torch.autocast(given.device.type, enabled=False):
        distance = (float_table**2).sum(1) - 2 * flat @ float_table.T
    snapped = table[distance.argmin(1)].reshape(given.shape)
    return snapped.numpy() if isinstance(pixels, np.ndarray) else snapped


@dataclass(frozen=True, eq=False)
class Palette:
    """The colours (K, 3) uint8 of the HUD band and of the view below it."""

    hud: np.ndarray
    view: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "hud", _colours(self.hud, "HUD"))
        object.__setattr__(self, "view", _colours(self.view, "view"))
        if not len(self.view):
            raise MaagError("a palette needs at least one view colour")

    def snap(self, frames: Frames, hud_height: int) -> Frames:
        """`frames` (..., H, W, 3) uint8, one frame or a batch, a numpy array or a tensor on
        any device, with every pixel the nearest colour of its band (a frame with a HUD
        needs a palette with HUD colours: `fits`)."""
        view = nearest_colour(frames[..., hud_height:, :, :], self.view)
        if not hud_height:
            return view
        hud = nearest_colour(frames[..., :hud_height, :, :], self.hud)
        if isinstance(frames, np.ndarray):
            return np.concatenate([hud, view], axis=-3)
        return torch.cat([hud, view], dim=-3)

    def fits(self, hud_height: int) -> bool:
        """Whether it has colours for every band of frames with this HUD height."""
        return bool(len(self.hud)) or not hud_height

    def to_dict(self) -> dict[str, list]:
        return {"hud": self.hud.tolist(), "view": self.view.tolist()}

    @classmethod
    def from_dict(cls, value: Any) -> Palette:
        if not isinstance(value, dict) or set(value) != {"hud", "view"}:
            raise MaagError('a palette is {"hud": [[r, g, b], ...], "view": [...]}')
        return cls(value["hud"], value["view"])


def palette_of(frames: Iterable[np.ndarray], hud_height: int) -> Palette:
    """The palette of frames (each (..., H, W, 3) uint8): every colour each band uses;
    MaagError where a band uses more than a palette holds."""
    seen = np.zeros((2, 1 << 24), bool)  # per band, one flag per 24-bit RGB colour
    for block in frames:
        rgb = block.astype(np.uint32)
        codes = rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]
        seen[0, codes[..., :hud_height, :].ravel()] = True
        seen[1, codes[..., hud_height:, :].ravel()] = True
    bands = []
    for name, flags in zip(("HUD", "view"), seen, strict=True):
        codes = np.flatnonzero(flags)
        if len(codes) > MAX_COLOURS:
            raise MaagError(
                f"the frames' {name} uses {len(codes)} colours: a palette holds at most "
                f"{MAX_COLOURS}, so this game cannot be snapped to one"
            )
        bands.append(np.stack([codes >> 16, codes >> 8 & 255, codes & 255], axis=1))
    return Palette(*bands)
