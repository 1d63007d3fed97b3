"""`maag export`: a training run's latest checkpoint -> a playable model folder."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file

from maag.errors import MaagError

from .checkpoint import CheckpointStore
from .generator import GeneratorRecipe, build_generator


def export_model(run: str, out: str, start_frames: int = 8, weights: str = "ema") -> Path:
    """Write model folder `out` from run `run` (EMA weights unless told otherwise)."""
    from maag.data import Dataset
    from maag.generative import save_model_folder

    checkpoint = CheckpointStore(run).latest()
    if checkpoint is None:
        raise MaagError(f"{run} holds no checkpoint to export")
    recipe = GeneratorRecipe().updated(json.loads((Path(run) / "recipe.json").read_text()))
    dataset = Dataset(recipe.data)
    generator = build_generator(recipe, dataset.spec)
    try:
        generator.load_state_dict(load_file(str(checkpoint / f"{weights}.safetensors")))
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise MaagError(f"checkpoint {checkpoint} cannot be exported: {exc}") from None
    first_shard = dataset.load_shard(0)
    state = json.loads((checkpoint / "state.json").read_text())
    provenance = {
        "run": str(run),
        "checkpoint": checkpoint.name,
        "step": state["step"],
        "weights": weights,
        "recipe": json.loads((Path(run) / "recipe.json").read_text()),
    }
    return save_model_folder(
        out,
        generator,
        dataset.spec,
        first_shard["frames"][:start_frames, 0],
        recipe.sampler_steps,
        provenance,
    )
