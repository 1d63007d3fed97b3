"""`maag export`: training runs' latest checkpoints -> a playable model folder."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from maag.errors import MaagError
from maag.palette import Palette, palette_of
from maag.spec import GameSpec

from .checkpoint import CheckpointStore
from .generator import GeneratorRecipe, GeneratorTask
from .logicnet import LogicNetRecipe, LogicNetTask

NETWORK_NAMES = {"logicnet": "LogicNet", "observer": "observer"}  # a model folder's parts


def restore(run: str, recipe_type: Any, task: Any, weights: str = "ema"):
    """(network, spec, provenance) from a run's latest checkpoint."""
    checkpoint = CheckpointStore(run).latest()
    if checkpoint is None:
        raise MaagError(f"{run} holds no checkpoint to export")
    recipe = recipe_type.of_run(run)
    spec = GameSpec.from_dict(json.loads((Path(run) / "spec.json").read_text()))
    network = task.build(recipe, spec)
    try:
        network.load_state_dict(load_file(str(checkpoint / f"{weights}.safetensors")))
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise MaagError(f"checkpoint {checkpoint} cannot be exported: {exc}") from None
    state = json.loads((checkpoint / "state.json").read_text())
    provenance = {
        "run": str(run),
        "checkpoint": checkpoint.name,
        "step": state["step"],
        "weights": weights,
        "recipe": json.loads(recipe.to_json()),
    }
    return network, spec, provenance, recipe


def restore_logicnet(
    source: str, weights: str = "ema", part: str = "logicnet"
) -> tuple[Any, GameSpec, dict]:
    """(LogicNet, spec, provenance) from a LogicNet run or from a model folder's LogicNet
    (`part` "logicnet") or observer ("observer"), checked to be one that observes or not."""
    from maag.generative import load_network, read_model_config
    from maag.models.logicnet import LogicNet

    role = "an observer" if part == "observer" else "a LogicNet that decides"
    name = NETWORK_NAMES[part]
    if not (Path(source) / "model.json").is_file():
        restored = restore(source, LogicNetRecipe, LogicNetTask(), weights)[:3]
    else:
        config = read_model_config(source)
        if not (Path(source) / part).is_dir():
            raise MaagError(f"model {source} has no {name}")
        network = load_network(LogicNet, Path(source) / part, f"{name} weights")
        provenance = {"model": str(source), **config.get("provenance", {}).get(part, {})}
        restored = network, GameSpec.from_dict(config["spec"]), provenance
    if restored[0].config.observes != (part == "observer"):
        raise MaagError(f"{source} is not {role}")
    return restored


def export_model(
    run: str,
    out: str,
    start_frames: int = 8,
    weights: str = "ema",
    logicnet_run: str | None = None,
    half: bool = True,
    sampler_steps: int | None = None,
    reveal_sampler_steps: int | None = None,
    palette: bool = False,
    observer_run: str | None = None,
    observer_events: list[str] | None = None,
    tiles: bool = False,
    resamples: int = 0,
) -> Path:
    """Write model folder `out` from generator run `run` (and a LogicNet: a run's latest
    checkpoint, or the LogicNet of a model folder, provenance and all; and likewise an
    observer, which checks what LogicNet decided against each frame drawn: of the events
    `observer_events`, or of all; where it reads otherwise, the frame is drawn anew up to
    `resamples` times with other noise before the record follows it).

    Weights are stored in float16 unless `half` is off (they load as float32). With
    `palette`, the colours of the run's training frames (HUD band and view apart) become
    the model's palette: every frame it draws is snapped to them; with `tiles` too, the
    tiles of a view laid out on tiles (`GameSpec.tile`): each tile drawn is snapped to the
    nearest tile of the training frames.
    """
    from maag.data import Dataset
    from maag.generative import save_model_folder

    generator, spec, provenance, recipe = restore(run, GeneratorRecipe, GeneratorTask(), weights)
    if tiles and not palette:
        raise MaagError("tiles are snapped as part of the palette: give --palette too")
    if tiles and spec.tile is None:
        raise MaagError(f"{spec.name}'s view is not laid out on tiles: drop --tiles")
    provenance = {"generator": provenance}
    if observer_run is not None and logicnet_run is None:
        raise MaagError("an observer checks what LogicNet decided: give --logicnet-run too")
    sources = {"logicnet": logicnet_run, "observer": observer_run}
    networks = _restore_networks(sources, spec, run, weights, half, provenance)
    if half:
        generator = generator.to(torch.float16)
    dataset = Dataset(recipe.data, game=spec.name)
    shard = dataset.load_shard(0)
    frames, cameras = shard["frames"][:start_frames, 0], shard["camera"][:start_frames, 0]
    players = bounds = None
    if spec.follow is not None:
        players, bounds = start_positions(spec, dataset.shards[0]["seeds"], frames, cameras)
    return save_model_folder(
        out, generator, spec, frames, cameras,
        sampler_steps or recipe.sampler_steps, provenance, networks.get("logicnet"),
        recipe.reveal_sampler_steps if reveal_sampler_steps is None else reveal_sampler_steps,
        players, bounds, data_palette(dataset, spec, tiles) if palette else None,
        networks.get("observer"), observer_events, resamples,
    )  # fmt: skip


def repack_model(
    model: str, out: str, logicnet_run: str | None = None, observer_run: str | None = None,
    weights: str = "ema", half: bool = True, observer_events: list[str] | None = None,
    resamples: int | None = None,
) -> Path:  # fmt: skip
    """Write model folder `out` from model folder `model` (generator, start frames,
    palette, sampler settings and provenance as they are) with its LogicNet or observer
    taken from `logicnet_run` or `observer_run` (a run or a model folder) where given, and
    the events its observer observes `observer_events` and its `resamples` where given."""
    from maag.generative import check_observer_settings, load, read_model_config, save_model_folder

    game = load(model)
    config = read_model_config(model)
    provenance = dict(config.get("provenance", {}))
    sources = {"logicnet": logicnet_run, "observer": observer_run}
    networks = _restore_networks(sources, game.spec, model, weights, half, provenance)
    kept = {"logicnet": game.logicnet, "observer": game.observer}
    networks = {part: networks.get(part, kept[part]) for part in kept}
    if networks["observer"] is not None and networks["logicnet"] is None:
        raise MaagError(f"{model} has no LogicNet for an observer to check: give --logicnet-run")
    if observer_events is None:
        observer_events = config.get("observer_events")
    if resamples is None:
        resamples = config.get("resamples", 0)
    check_observer_settings(game.spec, networks["observer"], observer_events, resamples)
    generator = game.generator.to(torch.float16) if half else game.generator
    return save_model_folder(
        out, generator, game.spec, game.start_frames, game.start_cameras,
        config.get("sampler_steps", 1), provenance, networks["logicnet"],
        config.get("reveal_sampler_steps", 0), game.start_players, game.start_bounds,
        game.palette, networks["observer"], observer_events, resamples,
    )  # fmt: skip


def _restore_networks(
    sources: dict[str, str | None], spec: GameSpec, source_of_generator: str, weights: str,
    half: bool, provenance: dict,
) -> dict[str, Any]:  # fmt: skip
    """The LogicNet and observer of each part's source given (a run or a model folder),
    checked to play `spec`; their provenance goes into `provenance`."""
    networks = {}
    for part, source in sources.items():
        if source is None:
            continue
        network, network_spec, provenance[part] = restore_logicnet(source, weights, part)
        if network_spec.name != spec.name:
            raise MaagError(
                f"{source} is a {network_spec.name} {NETWORK_NAMES[part]}, "
                f"{source_of_generator} a {spec.name} generator"
            )
        if network_spec != spec:  # the same game, its spec changed in between
            differ = [
                f.name
                for f in fields(spec)
                if getattr(spec, f.name) != getattr(network_spec, f.name)
            ]
            raise MaagError(
                f"{source}'s {NETWORK_NAMES[part]} and {source_of_generator}'s generator were "
                f"trained on other versions of the {spec.name} spec ({', '.join(differ)} differ)"
            )
        networks[part] = network.to(torch.float16) if half else network
    return networks


def data_palette(dataset: Any, spec: GameSpec, tiles: bool = False) -> Palette:
    """The palette of every frame of `dataset`, read episode by episode (with `tiles`, the
    tiles of its view too)."""
    episodes = (
        episode for i in range(len(dataset.shards)) for episode in dataset.load_shard(i)["frames"]
    )
    return palette_of(episodes, spec.hud_height, spec.tile if tiles else None)


def start_positions(
    spec: GameSpec, seeds: list[list[int]], frames: np.ndarray, cameras: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The player's start (N, 2) and the world's bounds (N, 4) at each start frame, for a
    camera that follows the player: the engine is reset with each episode's seed (as
    `maag.data.generate_episode` did) and must draw the frame and camera the data holds."""
    from maag.games import get_game

    engine = get_game(spec.name).engine
    players, bounds = [], []
    for i, (frame, camera) in enumerate(zip(frames, cameras, strict=True)):
        engine_seed = int(seeds[i][0])
        step = engine(engine_seed).reset(engine_seed)
        if not np.array_equal(step.frame, frame) or tuple(step.camera) != tuple(camera):
            raise MaagError(
                f"the {spec.name} engine no longer starts episode {i} of the data as it was "
                "recorded: generate the data again"
            )
        if step.player is None or step.bounds is None:
            raise MaagError(f"the {spec.name} engine's steps tell no player position and bounds")
        players.append(step.player)
        bounds.append(step.bounds)
    return np.array(players, np.int32), np.array(bounds, np.int32)
