"""The generative game: a trained generator behind the same reset/step protocol as engines.

A model folder plays on its own:

    models/traveler/
      model.json                 game spec, context length, sampler steps, provenance
      generator/                 FrameDiT: config.json + diffusion_pytorch_model.safetensors
      start_frames.safetensors   engine reset frames to start episodes from
      README.md                  the model card
"""

from __future__ import annotations

import json
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from maag.errors import MaagError
from maag.io import write_atomic
from maag.spec import Game, GameSpec, Step

MODEL_FORMAT = "maag-model/1"


class GenerativeGame(Game):
    """Every frame drawn by the generator from the last K frames and the action.

    The baseline holds no record: `Step.values` is empty and `Step.camera` is None
    (the modules add both). `timings` holds the last step's milliseconds per part.
    """

    modules: tuple[str, ...] = ()  # consistency modules switched on

    def __init__(
        self,
        generator: torch.nn.Module,
        spec: GameSpec,
        start_frames: np.ndarray,
        sampler_steps: int = 1,
        seed: int = 0,
    ):
        from maag.models.flow import FlowSampler

        self.spec = spec
        self.generator = generator.eval()
        self.context_frames = generator.config.context_frames
        self.start_frames = start_frames
        self.sampler = FlowSampler(sampler_steps)
        self.seed = seed
        self.noise: torch.Generator | None = None
        self.timings: dict[str, float] = {}

    @property
    def sampler_steps(self) -> int:
        return self.sampler.steps

    @sampler_steps.setter
    def sampler_steps(self, steps: int) -> None:
        if steps < 1:
            raise MaagError(f"sampler steps must be at least 1, got {steps}")
        self.sampler.steps = steps

    def reset(self, seed: int | None = None) -> Step:
        seed = self.seed if seed is None else seed
        self.noise = torch.Generator().manual_seed(seed)
        start = self.start_frames[np.random.default_rng(seed).integers(len(self.start_frames))]
        self.context = deque([start] * self.context_frames, maxlen=self.context_frames)
        return Step(start.copy(), {}, (), None)

    def step(self, action: int) -> Step:
        if self.noise is None:
            raise MaagError("call reset() before step()")
        from maag.models.flow import stack_context, to_uint8, to_unit

        action = self.spec.check_action(action)
        start = time.perf_counter()
        context = to_unit(torch.from_numpy(np.stack(self.context)))[None]
        frame = self.sampler.sample(
            self.generator,
            base=context[:, -1],
            context=stack_context(context),
            action=torch.tensor([action]),
            generator=self.noise,
        )
        pixels = to_uint8(frame[0]).numpy()
        self.timings = {"generator": (time.perf_counter() - start) * 1000}
        self.context.append(pixels)
        return Step(pixels, {}, (), None)


def shipped_model(game: str) -> Path:
    """The model folder shipped for `game` in maag.models, or MaagError if there is none."""
    import maag.models

    folder = Path(maag.models.__file__).parent / game
    if not (folder / "model.json").exists():
        raise MaagError(
            f"no generative model is shipped for {game} yet: play the engine with --engine"
        )
    return folder


def save_model_folder(
    out: str | Path,
    generator: Any,
    spec: GameSpec,
    start_frames: np.ndarray,
    sampler_steps: int,
    provenance: dict[str, Any],
) -> Path:
    """Write a playable model folder (weights as safetensors, config as JSON)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    generator.save_pretrained(out / "generator", safe_serialization=True)
    write_atomic(
        out / "start_frames.safetensors",
        lambda tmp: save_file({"frames": np.ascontiguousarray(start_frames)}, str(tmp)),
    )
    config = {
        "format": MODEL_FORMAT,
        "game": spec.name,
        "spec": spec.to_dict(),
        "sampler_steps": sampler_steps,
        "provenance": provenance,
    }
    write_atomic(out / "model.json", lambda tmp: tmp.write_text(json.dumps(config, indent=1)))
    return out


def read_model_config(path: str | Path) -> dict[str, Any]:
    """A model folder's model.json, or MaagError naming what is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise MaagError(f"no model folder at {path}")
    try:
        config = json.loads((path / "model.json").read_text())
    except FileNotFoundError:
        raise MaagError(f"{path} holds no model.json: not a maag model folder") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MaagError(f"{path / 'model.json'} cannot be read: {exc}") from None
    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
        raise MaagError(f"{path / 'model.json'} is not a maag model config ({MODEL_FORMAT})")
    return config


def load(
    path: str | Path,
    game: str | None = None,
    sampler_steps: int | None = None,
    seed: int = 0,
) -> GenerativeGame:
    """The generative game in model folder `path` (checked to be of `game` when given)."""
    from maag.models.dit import FrameDiT

    path = Path(path)
    config = read_model_config(path)
    spec = GameSpec.from_dict(config["spec"])
    if game is not None and spec.name != game:
        raise MaagError(f"model {path} is a {spec.name} model, not {game}")
    try:
        generator = FrameDiT.from_pretrained(path / "generator", use_safetensors=True)
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MaagError(f"generator weights in {path} cannot be loaded: {first_line}") from None
    try:
        start_frames = load_file(str(path / "start_frames.safetensors"))["frames"]
    except (OSError, KeyError, SafetensorError) as exc:
        raise MaagError(f"start frames in {path} cannot be loaded: {exc}") from None
    expected = (spec.frame_height, spec.frame_width, 3)
    if start_frames.ndim != 4 or start_frames.shape[1:] != expected or not len(start_frames):
        raise MaagError(
            f"start frames in {path} have shape {start_frames.shape}, not (N, *{expected})"
        )
    steps = sampler_steps or config.get("sampler_steps", 1)
    return GenerativeGame(generator, spec, start_frames, steps, seed)
