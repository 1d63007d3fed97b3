"""Recording play to GIF (or MP4 where imageio's ffmpeg plugin is installed)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from maag.errors import MaagError
from maag.io import atomic_path

FORMATS = (".gif", ".mp4")


class Recorder:
    """Collects frames and writes them, scaled up with nearest-neighbour, in one atomic write."""

    def __init__(self, path: str | Path, fps: float, scale: int = 4):
        self.path = Path(path)
        if self.path.suffix.lower() not in FORMATS:
            raise MaagError(f"cannot record to {self.path}: use a .gif or .mp4 file name")
        if not self.path.parent.is_dir():
            raise MaagError(
                f"cannot record to {self.path}: folder {self.path.parent} does not exist"
            )
        self.fps = fps
        self.scale = scale
        self.frames: list[np.ndarray] = []

    def add(self, frame: np.ndarray) -> None:
        self.frames.append(frame)

    def close(self) -> Path:
        """Write the recording; the file appears complete or not at all."""
        if not self.frames:
            raise MaagError("nothing to record: no frames were played")
        video = np.stack(self.frames).repeat(self.scale, axis=1).repeat(self.scale, axis=2)
        suffix = self.path.suffix.lower()
        with atomic_path(self.path) as tmp:
            if suffix == ".gif":
                iio.imwrite(tmp, video, extension=".gif", duration=1000 / self.fps, loop=0)
            else:
                try:
                    # the temporary name ends in .tmp: name the container for ffmpeg
                    iio.imwrite(
                        tmp, video, extension=".mp4", fps=self.fps,
                        output_params=["-f", "mp4"], macro_block_size=2,
                    )  # fmt: skip
                except (ImportError, ValueError, OSError) as exc:
                    raise MaagError(f"cannot write MP4 ({exc}); record a .gif instead") from None
        return self.path
