"""A game's palette: the colours of its HUD band and of its view (and, where the view is a
grid of tiles, its tiles), and snapping to them.

Pixel-art games draw with a few flat colours, and the HUD's (digits on a dark band) are
not the world's. A generated frame snapped band by band to its palette cannot carry a
slightly-off colour into the next step, nor a world colour into the HUD or back. A tile
game (Pac-Man's maze) draws its view with a handful of tiles, too: snapped tile by tile,
a drawing holds only tiles the game draws, never a smudge between two of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from maag.errors import MaagError

MAX_COLOURS = 64  # per band: more than this and a game is not drawn with a palette
MAX_TILES = 64  # more distinct tiles than this and a view is not drawn with a tile set
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


def _tile_rows(view: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., H, W, 3) -> (..., H/height, W/width, height * width * 3): one row per tile."""
    *lead, h, w, _ = view.shape
    grid = view.reshape(*lead, h // height, height, w // width, width, 3)
    return grid.transpose(-4, -3).reshape(*lead, h // height, w // width, -1)


def nearest_tile(view: Frames, tiles: np.ndarray) -> Frames:
    """`view` (..., H, W, 3) uint8, a numpy array or a tensor on any device, with each tile
    of its grid replaced by its nearest of `tiles` (K, h, w, 3) by squared RGB distance
    over the tile's pixels (ties: the first); of the type it was given, on its device."""
    given = torch.as_tensor(view)
    count, height, width, _ = tiles.shape
    table = torch.as_tensor(tiles).to(given.device).reshape(count, -1)
    rows, float_table = _tile_rows(given, height, width).float(), table.float()
    # as in nearest_colour, exact in float32: every term stays below 2**24
    with torch.autocast(given.device.type, enabled=False):
        distance = (float_table**2).sum(1) - 2 * rows @ float_table.T
    picked = table[distance.argmin(-1)]  # (..., rows, cols, h * w * 3)
    *lead, h, w, _ = given.shape
    grid = picked.reshape(*lead, h // height, w // width, height, width, 3).transpose(-4, -3)
    snapped = grid.reshape(given.shape)
    return snapped.numpy() if isinstance(view, np.ndarray) else snapped


def _tile_set(value: Any) -> np.ndarray | None:
    """A view's tiles as (K, h, w, 3) uint8 (None: no tile set), or MaagError."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.ndim != 4 or array.shape[-1] != 3 or not 0 < len(array) <= MAX_TILES:
        raise MaagError(
            f"a palette's tiles are 1 to {MAX_TILES} images (h, w, 3), got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() > 255:
        raise MaagError("a palette's tiles are integers 0..255")
    return np.ascontiguousarray(array, dtype=np.uint8)


@dataclass(frozen=True, eq=False)
class Palette:
    """The colours (K, 3) uint8 of the HUD band and of the view below it; where the view
    is a grid of tiles drawn from a small set, the set (K, h, w, 3) uint8, else None."""

    hud: np.ndarray
    view: np.ndarray
    tiles: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "hud", _colours(self.hud, "HUD"))
        object.__setattr__(self, "view", _colours(self.view, "view"))
        object.__setattr__(self, "tiles", _tile_set(self.tiles))
        if not len(self.view):
            raise MaagError("a palette needs at least one view colour")

    def snap(self, frames: Frames, hud_height: int) -> Frames:
        """`frames` (..., H, W, 3) uint8, one frame or a batch, a numpy array or a tensor on
        any device, with every pixel the nearest colour of its band (a frame with a HUD
        needs a palette with HUD colours: `fits`), and with a tile set every tile of the
        view the nearest tile."""
        view = frames[..., hud_height:, :, :]
        if self.tiles is None:
            view = nearest_colour(view, self.view)
        else:
            view = nearest_tile(view, self.tiles)
        if not hud_height:
            return view
        hud = nearest_colour(frames[..., :hud_height, :, :], self.hud)
        if isinstance(frames, np.ndarray):
            return np.concatenate([hud, view], axis=-3)
        return torch.cat([hud, view], dim=-3)

    def fits(self, hud_height: int, view_size: tuple[int, int]) -> bool:
        """Whether it has colours for every band of frames with this HUD height, and its
        tiles (if any) tile a view of `view_size` (width, height, as `GameSpec.view_size`)."""
        if self.tiles is not None:
            height, width = self.tiles.shape[1:3]
            if view_size[0] % width or view_size[1] % height:
                return False
        return bool(len(self.hud)) or not hud_height

    def to_dict(self) -> dict[str, list]:
        colours = {"hud": self.hud.tolist(), "view": self.view.tolist()}
        return colours if self.tiles is None else colours | {"tiles": self.tiles.tolist()}

    @classmethod
    def from_dict(cls, value: Any) -> Palette:
        if not isinstance(value, dict) or not {"hud", "view"} <= set(value) <= _KEYS:
            raise MaagError('a palette is {"hud": [[r, g, b], ...], "view": [...]} (+ "tiles")')
        return cls(value["hud"], value["view"], value.get("tiles"))


_KEYS = {"hud", "view", "tiles"}


def palette_of(
    frames: Iterable[np.ndarray], hud_height: int, tile: tuple[int, int] | None = None
) -> Palette:
    """The palette of frames (each (..., H, W, 3) uint8): every colour each band uses;
    MaagError where a band uses more than a palette holds. With `tile` (width, height in
    pixels: the grid the view is drawn on, `GameSpec.tile`), also every tile the view
    shows, unless it shows more than MAX_TILES (then no tile set)."""
    seen = np.zeros((2, 1 << 24), bool)  # per band, one flag per 24-bit RGB colour
    tiles: np.ndarray | None = None
    for block in frames:
        rgb = block.astype(np.uint32)
        codes = rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]
        seen[0, codes[..., :hud_height, :].ravel()] = True
        seen[1, codes[..., hud_height:, :].ravel()] = True
        if tile is not None and (tiles is None or len(tiles) <= MAX_TILES):
            found = _distinct_tiles(block[..., hud_height:, :, :], tile)
            tiles = found if tiles is None else np.union1d(tiles, found)
    bands = []
    for name, flags in zip(("HUD", "view"), seen, strict=True):
        codes = np.flatnonzero(flags)
        if len(codes) > MAX_COLOURS:
            raise MaagError(
                f"the frames' {name} uses {len(codes)} colours: a palette holds at most "
                f"{MAX_COLOURS}, so this game cannot be snapped to one"
            )
        bands.append(np.stack([codes >> 16, codes >> 8 & 255, codes & 255], axis=1))
    if tiles is None or len(tiles) > MAX_TILES:
        return Palette(*bands)
    return Palette(*bands, tiles.view(np.uint8).reshape(len(tiles), tile[1], tile[0], 3))


def tile_set(frames: Iterable[np.ndarray], tile: tuple[int, int]) -> np.ndarray:
    """Every distinct tile (K, h, w, 3) uint8, sorted, of frames (each (..., H, W, 3)
    uint8) cut into a grid of `tile` (width, height) from their top-left corner."""
    tiles = np.zeros(0, np.dtype((np.void, tile[0] * tile[1] * 3)))
    for block in frames:
        tiles = np.union1d(tiles, _distinct_tiles(np.asarray(block), tile))
    return tiles.view(np.uint8).reshape(len(tiles), tile[1], tile[0], 3)


def _distinct_tiles(frames: np.ndarray, tile: tuple[int, int]) -> np.ndarray:
    """The distinct tiles of frames (..., H, W, 3) uint8 as `_distinct` rows."""
    rows = _tile_rows(torch.from_numpy(np.ascontiguousarray(frames)), tile[1], tile[0])
    return _distinct(rows.reshape(-1, rows.shape[-1]).numpy())


def _distinct(rows: np.ndarray) -> np.ndarray:
    """The distinct rows of (N, P) uint8, sorted, each one opaque value of P bytes (so
    that np.unique compares whole rows at once)."""
    return np.unique(np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).ravel())
