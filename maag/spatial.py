"""The spatial module's exact part: a sparse map of everything drawn so far.

The map holds world pixels (x right, y down, negative coordinates allowed) in square
chunks, created only where something was written, so its memory grows with the explored
area and never with the number of steps. Per pixel it keeps the colour (RGB uint8), a
known flag, `last_seen`: the step at which the pixel was last inside a written view
(-1 when unknown or only pre-filled), and its first look (the colour it became known
with, written or pre-filled).

Write-back policy (`SpatialMap.write`, and `MapHistory` for training, exactly the same):
for every pixel of the view that `keep` does not mark,
  - an unknown pixel takes the new value and becomes known;
  - a known pixel takes the new value only when it differs from the stored value by more
    than `change_threshold` on some channel (max |new - old| > threshold), so the small
    drift of a generated frame never enters the map (static scenery never drifts) while
    a real change (a pellet eaten) does;
  - `last_seen` becomes the step, whether the value changed or not.
Pixels that `keep` marks (moving sprites such as the player) are left untouched: value,
known flag and last_seen.

`SpatialMap.restore` puts every known pixel back to its first look: where the rules bring
the world back to how the level began (`EventSpec.restores_world`: Pac-Man's pellets come
back), what the map remembers of the changes (the pellets eaten) is no longer so.

`MapHistory` gives, for one recorded episode, the map as it stood before every step
(frames 0..t-1 written, step index = frame index), built in one pass and read at any t
without replaying the episode.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from maag.errors import MaagError

CHUNK_SIZE = 32
CHANGE_THRESHOLD = 48

Tile = tuple[tuple[int, int], tuple[slice, slice], tuple[slice, slice]]


def tiles(camera: tuple[int, int], size: tuple[int, int], chunk_size: int) -> Iterator[Tile]:
    """The chunks a (height, width) window at world `camera` (x, y) overlaps: per chunk, its
    key (cx, cy), the overlap's (rows, cols) in the chunk and its (rows, cols) in the window."""
    x0, y0 = int(camera[0]), int(camera[1])
    h, w = size
    c = chunk_size
    for cy in range(y0 // c, (y0 + h - 1) // c + 1):
        top, bottom = max(y0, cy * c), min(y0 + h, (cy + 1) * c)
        for cx in range(x0 // c, (x0 + w - 1) // c + 1):
            left, right = max(x0, cx * c), min(x0 + w, (cx + 1) * c)
            yield (
                (cx, cy),
                (slice(top - cy * c, bottom - cy * c), slice(left - cx * c, right - cx * c)),
                (slice(top - y0, bottom - y0), slice(left - x0, right - x0)),
            )


class Chunk:
    """One square of the map: colours, known flags, last_seen steps and first looks."""

    __slots__ = ("first", "known", "last_seen", "rgb")

    def __init__(self, size: int):
        self.rgb = np.zeros((size, size, 3), np.uint8)
        self.known = np.zeros((size, size), bool)
        self.last_seen = np.full((size, size), -1, np.int32)
        self.first = np.zeros((size, size, 3), np.uint8)

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self.__slots__)


@dataclass(frozen=True)
class Written:
    """What one write did in one chunk (for MapHistory), per written pixel."""

    key: tuple[int, int]  # the chunk
    index: np.ndarray  # (n,) int64 flat index in the chunk
    previous: np.ndarray  # (n,) int32 last_seen before the write
    changed: np.ndarray  # (n,) bool whether the value was taken
    rgb: np.ndarray  # (n, 3) uint8 the view's values


def check_scene(scene: np.ndarray, keep: np.ndarray | None = None) -> None:
    """MaagError unless `scene` is uint8 (h, w, 3) and `keep`, if given, bool (h, w)."""
    if scene.dtype != np.uint8 or scene.ndim != 3 or scene.shape[2] != 3:
        raise MaagError(f"a map view must be uint8 (h, w, 3), got {scene.dtype} {scene.shape}")
    if keep is not None and (keep.dtype != bool or keep.shape != scene.shape[:2]):
        raise MaagError(f"keep must be bool {scene.shape[:2]}, got {keep.dtype} {keep.shape}")


class SpatialMap:
    """Everything drawn so far, in world pixels, stored sparsely in square chunks."""

    def __init__(self, chunk_size: int = CHUNK_SIZE, change_threshold: int = CHANGE_THRESHOLD):
        if chunk_size < 1 or not 0 <= change_threshold <= 255:
            raise MaagError(
                f"chunk_size must be >= 1 and change_threshold 0..255, "
                f"got {chunk_size} and {change_threshold}"
            )
        self.chunk_size = int(chunk_size)
        self.change_threshold = int(change_threshold)
        self.chunks: dict[tuple[int, int], Chunk] = {}

    @property
    def num_chunks(self) -> int:
        return len(self.chunks)

    @property
    def nbytes(self) -> int:
        """Bytes the chunks' arrays hold."""
        return sum(chunk.nbytes for chunk in self.chunks.values())

    def chunk(self, key: tuple[int, int]) -> Chunk:
        """The chunk at `key`, created empty if the map has none there yet."""
        if key not in self.chunks:
            self.chunks[key] = Chunk(self.chunk_size)
        return self.chunks[key]

    def write(
        self,
        scene: np.ndarray,
        camera: tuple[int, int],
        step: int,
        keep: np.ndarray | None = None,
    ) -> None:
        """Write a view whose top-left world pixel is `camera` (x, y), by the module's policy;
        pixels where `keep` is True are not written."""
        self._write(scene, camera, step, keep)

    def _write(
        self,
        scene: np.ndarray,
        camera: tuple[int, int],
        step: int,
        keep: np.ndarray | None,
        report: bool = False,
    ) -> list[Written]:
        """`write`; with `report`, also what it did in each chunk. The policy runs once
        over the whole window (gathered from the chunks, then scattered back)."""
        check_scene(scene, keep)
        write = np.ones(scene.shape[:2], bool) if keep is None else ~keep
        parts = [p for p in tiles(camera, scene.shape[:2], self.chunk_size) if write[p[2]].any()]
        if not parts:
            return []
        for key, _, _ in parts:
            self.chunk(key)
        rgb, known, last_seen = self.retrieve(camera, scene.shape[:2])
        diff = np.maximum(scene, rgb) - np.minimum(scene, rgb)  # |new - old|, no overflow
        drift = np.maximum(np.maximum(diff[..., 0], diff[..., 1]), diff[..., 2])
        changed = write & (~known | (drift > self.change_threshold))
        done = []
        if report:
            local = np.arange(self.chunk_size**2).reshape(self.chunk_size, -1)
            for key, chunk_part, view_part in parts:
                w = write[view_part]
                seen, taken = last_seen[view_part][w], changed[view_part][w]
                done.append(Written(key, local[chunk_part][w], seen, taken, scene[view_part][w]))
        fresh = changed & ~known  # known from now on: their first look
        rgb[changed] = scene[changed]
        known |= changed
        last_seen[write] = step
        for key, chunk_part, view_part in parts:
            chunk = self.chunks[key]
            chunk.rgb[chunk_part] = rgb[view_part]
            chunk.known[chunk_part] = known[view_part]
            chunk.last_seen[chunk_part] = last_seen[view_part]
            chunk.first[chunk_part][fresh[view_part]] = scene[view_part][fresh[view_part]]
        return done

    def restore(self) -> None:
        """Put every known pixel back to its first look (the world restored to how the
        level began, `EventSpec.restores_world`); known flags and last_seen stay."""
        self._restore()

    def _restore(self) -> list[tuple[tuple[int, int], np.ndarray, np.ndarray]]:
        """`restore`; returns per chunk the flat indices of the pixels it changed and their
        colours now (for MapHistory)."""
        done = []
        for key, chunk in self.chunks.items():
            back = chunk.known & (chunk.rgb != chunk.first).any(axis=-1)
            if back.any():
                chunk.rgb[back] = chunk.first[back]
                done.append((key, np.flatnonzero(back), chunk.first[back]))
        return done

    def retrieve(
        self, camera: tuple[int, int], size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the map knows of a (height, width) window at world `camera` (x, y): canvas
        uint8 (h, w, 3) (0 where unknown), known bool (h, w), last_seen int32 (h, w) (-1)."""
        h, w = size
        canvas = np.zeros((h, w, 3), np.uint8)
        known = np.zeros((h, w), bool)
        last_seen = np.full((h, w), -1, np.int32)
        for key, chunk_part, view_part in tiles(camera, size, self.chunk_size):
            chunk = self.chunks.get(key)
            if chunk is not None:
                canvas[view_part] = chunk.rgb[chunk_part]
                known[view_part] = chunk.known[chunk_part]
                last_seen[view_part] = chunk.last_seen[chunk_part]
        return canvas, known, last_seen

    def prefill(
        self, image: np.ndarray, origin: tuple[int, int], mask: np.ndarray | None = None
    ) -> None:
        """Customise the map before play: `image`'s pixels (where `mask`, if given, is True)
        become known at world `origin` (x, y) + their place, with last_seen -1."""
        check_scene(image, mask)
        for key, chunk_part, view_part in tiles(origin, image.shape[:2], self.chunk_size):
            fill = np.ones(image[view_part].shape[:2], bool) if mask is None else mask[view_part]
            if not fill.any():
                continue
            chunk = self.chunk(key)
            chunk.rgb[chunk_part][fill] = image[view_part][fill]
            chunk.first[chunk_part][fill] = image[view_part][fill]
            chunk.known[chunk_part][fill] = True
            chunk.last_seen[chunk_part][fill] = -1

    def state_dict(self) -> dict[str, np.ndarray]:
        """The map as plain arrays (chunks sorted by key), for saving a session."""
        keys = sorted(self.chunks)
        empty = Chunk(self.chunk_size)  # gives shape and dtype to a map without chunks
        chunks = [self.chunks[k] for k in keys]
        return {
            "chunk_size": np.array(self.chunk_size, np.int64),
            "change_threshold": np.array(self.change_threshold, np.int64),
            "keys": np.array(keys, np.int64).reshape(-1, 2),
            **{
                name: np.stack([getattr(k, name) for k in [empty, *chunks]])[1:]
                for name in Chunk.__slots__
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> SpatialMap:
        """The map a `state_dict` was taken from."""
        try:
            spatial = cls(int(state["chunk_size"]), int(state["change_threshold"]))
            c = spatial.chunk_size
            keys, rgb = state["keys"], state["rgb"]
            known, last_seen = state["known"], state["last_seen"]
            first = state.get("first", rgb)  # saved before first looks were kept: as it is
            n = len(keys)
            if (
                keys.shape != (n, 2)
                or rgb.shape != (n, c, c, 3)
                or first.shape != rgb.shape
                or known.shape != (n, c, c)
                or last_seen.shape != (n, c, c)
            ):
                raise MaagError("array shapes do not agree")
        except (KeyError, TypeError, ValueError) as exc:
            raise MaagError(f"malformed spatial map state: {exc}") from None
        for i, (cx, cy) in enumerate(keys.tolist()):
            chunk = spatial.chunk((cx, cy))
            chunk.rgb[:] = rgb[i]
            chunk.known[:] = known[i]
            chunk.last_seen[:] = last_seen[i]
            chunk.first[:] = first[i]
        return spatial


class MapHistory:
    """The map of one recorded episode as it stood before every step, for training.

    `view(t, camera, size)` is exactly what a SpatialMap written with frames 0..t-1 (step
    index = frame index, same policy) returns from `retrieve(camera, size)`, where the map
    was also restored (`SpatialMap.restore`) before writing each frame of `restores` (the
    frames a restoring event leads into: its view shows the world restored, as play draws
    it). One pass over the episode records, per pixel, each change (time, rgb) and each
    run of consecutive steps it was written; a view is one binary search per window pixel.
    """

    def __init__(
        self,
        scenes: np.ndarray | Sequence[np.ndarray],
        cameras: np.ndarray | Sequence[tuple[int, int]],
        keeps: np.ndarray | Sequence[np.ndarray | None] | None = None,
        chunk_size: int = CHUNK_SIZE,
        change_threshold: int = CHANGE_THRESHOLD,
        restores: Sequence[int] = (),
    ):
        if len(cameras) != len(scenes) or (keeps is not None and len(keeps) != len(scenes)):
            raise MaagError(
                f"{len(scenes)} scenes need as many cameras and keep masks, got {len(cameras)}"
                f" and {'none' if keeps is None else len(keeps)}"
            )
        restored = {int(step) for step in restores}
        if restored and not restored <= set(range(1, len(scenes))):
            raise MaagError(f"restores are frames 1..{len(scenes) - 1}, got {sorted(restored)}")
        live = SpatialMap(chunk_size, change_threshold)
        self.chunk_size = live.chunk_size
        self.num_steps = len(scenes)
        self.ids: dict[tuple[int, int], int] = {}  # chunk key -> chunk id, in order of creation
        area = self.chunk_size**2
        self.period = self.num_steps + 1  # key = slot * period + time; slot = id * area + pixel
        change_keys, change_rgb, starts, ends = [], [], [], []
        for step, scene in enumerate(scenes):
            if step in restored:  # after frame step - 1's write, in view(step) and on
                for key, index, rgb in live._restore():
                    slot = self.ids[key] * area + index
                    change_keys.append(slot * self.period + step - 1)
                    change_rgb.append(rgb)
            camera = (int(cameras[step][0]), int(cameras[step][1]))
            keep = None if keeps is None else keeps[step]
            for written in live._write(np.asarray(scene), camera, step, keep, report=True):
                slot = self.ids.setdefault(written.key, len(self.ids)) * area + written.index
                change_keys.append(slot[written.changed] * self.period + step)
                change_rgb.append(written.rgb[written.changed])
                # a new run of consecutive writes begins unless the pixel was written last step
                run = (written.previous < 0) | (written.previous != step - 1)
                starts.append(slot[run] * self.period + step)
                closed = run & (written.previous >= 0)
                ends.append(slot[closed] * self.period + written.previous[closed])
        for key, chunk in live.chunks.items():  # close the runs still open
            seen = chunk.last_seen.reshape(-1)
            slot = self.ids[key] * area + np.flatnonzero(seen >= 0)
            ends.append(slot * self.period + seen[seen >= 0])
        no_keys, no_rgb = np.zeros(0, np.int64), np.zeros((0, 3), np.uint8)
        change_key = np.concatenate([no_keys, *change_keys])
        order = np.argsort(change_key, kind="stable")
        self.change_key = change_key[order]  # sorted: by pixel slot, then time
        self.change_rgb = np.concatenate([no_rgb, *change_rgb])[order]
        # one pixel's runs are disjoint, so sorted starts and sorted ends pair up in order
        self.run_start = np.sort(np.concatenate([no_keys, *starts]))
        self.run_end = (np.sort(np.concatenate([no_keys, *ends])) % self.period).astype(np.int32)

    @property
    def nbytes(self) -> int:
        """Bytes the recorded history holds."""
        return (
            self.change_key.nbytes
            + self.change_rgb.nbytes
            + self.run_start.nbytes
            + self.run_end.nbytes
        )

    def view(
        self, t: int, camera: tuple[int, int], size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the map knew before step `t` (frames 0..t-1 written) of a (height, width)
        window at world `camera` (x, y): canvas, known, last_seen as `SpatialMap.retrieve`."""
        t = min(max(int(t), 0), self.num_steps)
        h, w = size
        c = self.chunk_size
        slot = np.full((h, w), -1, np.int64)
        local = np.arange(c * c).reshape(c, c)
        for key, chunk_part, view_part in tiles(camera, size, c):
            if key in self.ids:
                slot[view_part] = self.ids[key] * c * c + local[chunk_part]
        canvas = np.zeros((h, w, 3), np.uint8)
        known = np.zeros((h, w), bool)
        last_seen = np.full((h, w), -1, np.int32)
        inside = slot >= 0
        if not inside.any():
            return canvas, known, last_seen
        first = slot[inside] * self.period  # key of each pixel's time 0
        i = self._last_before(self.change_key, first, first + t)
        hit = i >= 0
        colours = np.zeros((len(first), 3), np.uint8)
        colours[hit] = self.change_rgb[i[hit]]
        canvas[inside] = colours
        known[inside] = hit
        i = self._last_before(self.run_start, first, first + t)
        seen = np.full(len(first), -1, np.int32)
        seen[i >= 0] = np.minimum(self.run_end[i[i >= 0]], t - 1)
        last_seen[inside] = seen
        return canvas, known, last_seen

    @staticmethod
    def _last_before(keys: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Per query, the index of the last sorted key in [low, high), or -1."""
        i = np.searchsorted(keys, high) - 1
        if len(keys) == 0:
            return i
        return np.where((i >= 0) & (keys[np.maximum(i, 0)] >= low), i, -1)


def generator_inputs(
    last: torch.Tensor,
    canvas: np.ndarray,
    known: np.ndarray,
    hud_height: int,
    moves: np.ndarray | None = None,
    sprites: np.ndarray | None = None,
    player: np.ndarray | None = None,
    player_tile: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The generator's base image and extra channels from map views (training and play).

    last (B, 3, H, W) in [-1, 1] is the last context frame; canvas (B, h, w, 3) uint8 and
    known (B, h, w) bool are the map's views of the scene rows (below the HUD); moves
    (B, 2) is how far (x, y) the camera moved since the last frame; sprites (B, H, W) bool
    marks the last frame's moving sprites. Base: the map's pixel where it knows it, else
    the last frame's pixel of the same world place (sliding-window linking; sprites are not
    world and do not move with it), else 0. Extra: the canvas where known (0 elsewhere) and
    the known-mask as +1/-1. With `player` (B, 4: the view pixel (x, y) of the player's
    tile, `player_tile` pixels square, in the last frame, then where the record puts it in
    the frame to draw; a row with a negative one is not told) the base also shows the last
    frame's player tile where the record puts it: the player drawn where the rules moved it.
    """
    full_canvas, full_known = _full_frame(canvas, known, hud_height, last.device)
    world = last
    if sprites is not None:  # sprites are not world: they do not move with it
        hidden = torch.from_numpy(np.array(sprites, bool)[:, None]).to(last.device)
        world = torch.where(hidden, 0.0, world)
    linked = world.clone()
    if moves is not None:  # one shift per distinct camera move, not per row
        moves = np.asarray(moves, int).reshape(len(last), 2)
        for dx, dy in np.unique(moves, axis=0).tolist():
            if dx or dy:
                rows = torch.from_numpy(np.flatnonzero((moves == (dx, dy)).all(axis=1)))
                rows = rows.to(last.device)
                linked[rows, :, hud_height:] = _moved(world[rows, :, hud_height:], -dx, -dy)
    base = torch.where(full_known, full_canvas, linked)
    if player is not None and player_tile:
        base = _player_moved(base, last, np.asarray(player, int), player_tile, hud_height)
    return base, _channels(full_canvas, full_known)


def player_moves(batch: dict, rows: np.ndarray | None = None) -> np.ndarray | None:
    """`generator_inputs`' player (B, 4) from a batch of transitions (its "player" and
    "target_player" view pixels), not told outside `rows` (B,) bool where given; None
    where the data holds no player."""
    if not batch["player"].shape[-1]:
        return None
    player = np.concatenate([np.asarray(batch["player"]), np.asarray(batch["target_player"])], 1)
    if rows is not None:
        player[~np.asarray(rows, bool)] = -1
    return player


def _player_moved(
    base: torch.Tensor, last: torch.Tensor, player: np.ndarray, size: int, hud_height: int
) -> torch.Tensor:
    """`base` with, in each told row of `player` (see `generator_inputs`), the last frame's
    player tile drawn where the record puts the player."""
    base = base.clone()
    height, width = base.shape[-2] - hud_height, base.shape[-1]
    for row, (x0, y0, x1, y1) in enumerate(player.tolist()):
        if min(x0, y0, x1, y1) < 0 or max(x0, x1) > width - size or max(y0, y1) > height - size:
            continue
        y0, y1 = y0 + hud_height, y1 + hud_height
        base[row, :, y1 : y1 + size, x1 : x1 + size] = last[row, :, y0 : y0 + size, x0 : x0 + size]
    return base


def map_channels(canvas: np.ndarray, known: np.ndarray, hud_height: int) -> torch.Tensor:
    """The map's view as the generator's extra channels (B, 4, H, W), for a LogicNet that
    reads the map too."""
    return _channels(*_full_frame(canvas, known, hud_height))


def _channels(full_canvas: torch.Tensor, full_known: torch.Tensor) -> torch.Tensor:
    """The canvas where known (0 elsewhere) and the known-mask as +1/-1."""
    return torch.cat([full_canvas * full_known, full_known.float() * 2 - 1], dim=1)


def _full_frame(
    canvas: np.ndarray, known: np.ndarray, hud_height: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map views of the scene rows as whole frames (B, 3, H, W) in [-1, 1] and (B, 1, H, W)
    bool on `device`, the HUD rows unknown."""
    batch, rows, width = known.shape
    full_known = torch.zeros((batch, 1, hud_height + rows, width), dtype=torch.bool, device=device)
    full_known[:, 0, hud_height:] = torch.from_numpy(np.array(known, bool)).to(device)
    full_canvas = torch.zeros((batch, 3, hud_height + rows, width), device=device)
    scene = torch.from_numpy(np.array(canvas, np.uint8)).to(device).float() / 127.5 - 1
    full_canvas[:, :, hud_height:] = scene.permute(0, 3, 1, 2)
    return full_canvas, full_known


def _moved(scenes: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """`scenes` (B, C, h, w) with their content moved by (dx, dy) pixels; revealed pixels 0."""
    if dx == dy == 0:
        return scenes
    out = torch.zeros_like(scenes)
    h, w = scenes.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = scenes[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out
