"""The minimap: a wide window of the spatial map around the camera, downscaled (numpy only)."""

from __future__ import annotations

import math

import numpy as np

UNKNOWN = np.array([14, 14, 20], np.float32)  # what the map knows nothing of
MARK = np.array([255, 214, 0], np.uint8)  # the outline of the current view


def minimap(
    game_map,
    camera: tuple[int, int],
    view_size: tuple[int, int],
    out_size: tuple[int, int],
    span: float = 5.0,
    mark: bool = True,
) -> np.ndarray:
    """What `game_map` (a SpatialMap) knows around the view whose top-left world pixel is
    `camera` (x, y) and whose size is `view_size` (height, width), as a uint8
    `out_size` (height, width) x 3 image.

    The image covers `span` view widths, centred on the view, at the image's aspect; each
    image pixel averages the map pixels under it (several samples per pixel when the map
    is shrunk): known ones in their colour, unknown ones dark. With `mark`, a one-pixel
    outline marks the current view.
    """
    out_h, out_w = (int(v) for v in out_size)
    view_h, view_w = (int(v) for v in view_size)
    if min(out_h, out_w, view_h, view_w) < 1 or span <= 0:
        raise ValueError(f"sizes must be positive, got out {out_size} view {view_size}")
    per_pixel = span * view_w / out_w  # world pixels per image pixel
    world_w, world_h = span * view_w, per_pixel * out_h
    x0 = math.floor(camera[0] + view_w / 2 - world_w / 2)
    y0 = math.floor(camera[1] + view_h / 2 - world_h / 2)
    size = (math.ceil(world_h) + 1, math.ceil(world_w) + 1)
    canvas, known, _ = game_map.retrieve((x0, y0), size)
    samples = max(1, math.ceil(per_pixel))  # per image pixel and axis
    step = per_pixel / samples
    ys = np.minimum(((np.arange(out_h * samples) + 0.5) * step).astype(int), size[0] - 1)
    xs = np.minimum(((np.arange(out_w * samples) + 0.5) * step).astype(int), size[1] - 1)
    rgb = canvas[ys][:, xs].astype(np.float32).reshape(out_h, samples, out_w, samples, 3)
    hit = known[ys][:, xs].astype(np.float32).reshape(out_h, samples, out_w, samples)
    count = hit.sum(axis=(1, 3))
    colour = (rgb * hit[..., None]).sum(axis=(1, 3)) / np.maximum(count, 1)[..., None]
    fraction = (count / samples**2)[..., None]
    image = np.rint(colour * fraction + UNKNOWN * (1 - fraction)).astype(np.uint8)
    if mark:
        left = math.floor((camera[0] - x0) / per_pixel)
        top = math.floor((camera[1] - y0) / per_pixel)
        right = math.ceil((camera[0] + view_w - x0) / per_pixel) - 1
        bottom = math.ceil((camera[1] + view_h - y0) / per_pixel) - 1
        _outline(image, top, left, bottom, right)
    return image


def _outline(image: np.ndarray, top: int, left: int, bottom: int, right: int) -> None:
    """Draw a rectangle's one-pixel outline (clipped to the image) in MARK."""
    h, w = image.shape[:2]
    t, b = max(top, 0), min(bottom, h - 1)
    lft, r = max(left, 0), min(right, w - 1)
    if t > b or lft > r:
        return
    for row in (top, bottom):
        if 0 <= row < h:
            image[row, lft : r + 1] = MARK
    for col in (left, right):
        if 0 <= col < w:
            image[t : b + 1, col] = MARK
