"""`maag train logicnet`: LogicNet on the same shards and the same loop as the generator."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from maag.errors import MaagError
from maag.spec import GameSpec

from .generator import training_tiles
from .loop import Recipe, train


@dataclass
class LogicNetRecipe(Recipe):
    network: ClassVar[str] = "logicnet"
    context_frames: int = 2
    width: int = 32
    max_count: int = 2
    focus: int = 0  # pixels of a closer look around the player (GameSpec.follow); 0: none
    # read the focus window as tile ids (a game drawn on tiles, GameSpec.tile); the tile
    # set is the training frames' (at most max_tiles)
    tiles: bool = False
    max_tiles: int = 128
    # an observer: its last input frame is the step's outcome; it reads what a frame shows
    observes: bool = False
    # an observer that reads the outcome moved against the step's camera move (LogicNet)
    aligned: bool = False
    # the spatial map's view at the step's camera as 4 more input channels (what each
    # place last showed), as the generator gets it
    map_view: bool = False
    lr: float = 1e-3
    steps: int = 2000
    mixed_precision: str = "no"
    # share of each batch whose last input frame the generator of model folder
    # drawn_model drew (from the data's frames before it, told the true values, snapped to
    # its palette, as in play): in play LogicNet reads the generator's frames, not the
    # engine's. drawn_count such drawings are made before training, half where an event fires
    drawn_share: float = 0.0
    drawn_model: str = ""
    drawn_count: int = 4096
    # share of each batch from episodes a model played (`maag data --model`): its drawn
    # frames, with the events the game's referee reads in them; `event_share` of those rows
    # from transitions where an event fires
    played_share: float = 0.0
    played_data: list[str] = field(default_factory=list)


def event_scores(predicted: np.ndarray, true: np.ndarray, names: tuple[str, ...]) -> dict:
    """Per event precision, recall and F1 of predicted vs true counts (B, E)."""
    scores = {}
    for i, name in enumerate(names):
        tp = np.minimum(predicted[:, i], true[:, i]).sum()
        fp, fn = predicted[:, i].sum() - tp, true[:, i].sum() - tp
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
        scores[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1)}
    return scores


class DrawnFrames:
    """The last input frame of `count` random transitions (half where an event fires) as
    the generator of the model folder `model_dir` draws it: teacher-forced from the data's
    frames before it, told the true values and events, both modules on, snapped to the
    model's palette where it has one. That frame is the last context frame of the
    transition after it or, for an observer (`observes`), the outcome of the transition
    into it, whose events it was told. `mixed_into` puts them into LogicNet's batches."""

    def __init__(self, episodes: dict, spec: GameSpec, model_dir: str, context_frames: int,
                 count: int, seed: int = 0, observes: bool = False,
                 map_view: bool = False, maps=None):  # fmt: skip
        import maag
        from maag.games import get_game
        from maag.metrics import draw_next
        from maag.models.flow import sampler_for
        from maag.transitions import MapViews, TransitionSampler

        game = maag.load(model_dir)
        if game.spec.name != spec.name:
            raise MaagError(f"drawn_model {model_dir} plays {game.spec.name}, not {spec.name}")
        if (game.map_inputs or map_view) and maps is None:  # the episodes' MapViews
            maps = MapViews(episodes, spec, get_game(spec.name).sprite_mask)
        picker = TransitionSampler(episodes, 1, seed, event_share=0.5)
        episode, target = picker.pick(count)
        self.episode, self.target = episode, np.maximum(target, 2)  # a frame 1 or later drawn
        self.observes = observes
        drawn_at = self.target if observes else self.target - 1
        generator_maps = maps if game.map_inputs else None
        drawing = TransitionSampler(
            episodes, game.generator.config.context_frames, maps=generator_maps
        )
        sampler, noise = (
            sampler_for(game.generator, game.sampler_steps),
            torch.Generator().manual_seed(seed),
        )
        drawn = []
        for start in tqdm(range(0, count, 64), desc="frames drawn for LogicNet", leave=False):
            rows = slice(start, start + 64)
            batch = drawing.gather(self.episode[rows], drawn_at[rows])
            with torch.inference_mode():
                frames = draw_next(
                    game.generator, batch, sampler, noise, game.tokens, generator_maps,
                    game.palette,
                )  # fmt: skip
            drawn.append(np.ascontiguousarray(frames.numpy()))
        self.frames = np.concatenate(drawn)
        self.transitions = TransitionSampler(
            episodes, context_frames, maps=maps if map_view else None
        )

    def mixed_into(self, batch: dict, share: float, noise: torch.Generator) -> dict:
        """`batch` with about `share` of its rows (at random) swapped for drawn ones."""
        swapped = torch.rand(len(batch["action"]), generator=noise) < share
        picks = torch.randint(len(self.frames), (int(swapped.sum()),), generator=noise).numpy()
        drawn = self.transitions.gather(self.episode[picks], self.target[picks])
        frames = torch.from_numpy(self.frames[picks])
        if self.observes:
            drawn["target"] = frames
        else:
            drawn["context"][:, -1] = frames
        return swapped_rows(batch, swapped, drawn)


class PlayedFrames:
    """Transitions of episodes a model played, read by the game's referee (`maag data
    --model`); `mixed_into` puts them into LogicNet's batches, `event_share` of them where
    an event fires (the event class chosen evenly, as `TransitionSampler` does)."""

    def __init__(self, folders: list[str], spec: GameSpec, context_frames: int,
                 event_share: float, map_view: bool = False):  # fmt: skip
        from maag.transitions import TransitionSampler, load_episodes

        episodes = load_episodes(folders[0], game=spec.name, more=folders[1:])
        self.transitions = TransitionSampler(
            episodes, context_frames, maps=_maps(episodes, spec, map_view)
        )
        self.episodes, self.steps = episodes["actions"].shape
        self.event_share = event_share

    def mixed_into(self, batch: dict, share: float, noise: torch.Generator) -> dict:
        """`batch` with about `share` of its rows (at random) swapped for played ones."""
        swapped = torch.rand(len(batch["action"]), generator=noise) < share
        count = int(swapped.sum())
        flat = torch.randint(self.episodes * self.steps, (count,), generator=noise).numpy()
        classes = self.transitions.by_event
        at_events = (torch.rand(count, generator=noise) < self.event_share).tolist()
        which = torch.randint(max(len(classes), 1), (count,), generator=noise).tolist()
        where = torch.rand(count, generator=noise).tolist()
        for row in range(count):
            if classes and at_events[row]:
                members = classes[which[row]]
                flat[row] = members[int(where[row] * len(members))]
        played = self.transitions.gather(flat // self.steps, flat % self.steps + 1)
        return swapped_rows(batch, swapped, played)


def swapped_rows(batch: dict, swapped: torch.Tensor, rows: dict) -> dict:
    """`batch`'s rows not `swapped`, then `rows` (as many as are swapped)."""
    keys = ("context", "target", "action", "chance", "player", "events")
    mixed = {k: torch.cat([batch[k][~swapped], rows[k]]) for k in keys}
    # numpy: the map views, where LogicNet reads the map; the camera's move, which an
    # aligned observer moves the outcome against
    for key in ("canvas", "known", "camera_move"):
        if key in batch:
            mixed[key] = np.concatenate([batch[key][~swapped.numpy()], rows[key]])
    return mixed


def _maps(episodes: dict, spec: GameSpec, map_view: bool):
    """The map views of `episodes` where a LogicNet reads the map, else None."""
    from maag.games import get_game
    from maag.transitions import MapViews

    return MapViews(episodes, spec, get_game(spec.name).sprite_mask) if map_view else None


class LogicNetTask:
    drawn: DrawnFrames | None = None
    played: PlayedFrames | None = None

    def augment(self, batch: dict, recipe: LogicNetRecipe, rng: np.random.Generator) -> dict:
        return batch  # LogicNet's batches need no change before its loss

    def build(self, recipe: LogicNetRecipe, spec: GameSpec, episodes: dict | None = None):
        from maag.models.logicnet import LogicNet

        if recipe.rollout_share:
            raise MaagError("rollout_share is for generators: a LogicNet draws no frames")
        if recipe.alternative_share and not recipe.observes:  # it decides before the outcome
            raise MaagError("alternative_share is for observers: a LogicNet that decides sees none")
        if recipe.aligned and not recipe.observes:
            raise MaagError("aligned moves the outcome an observer reads: it needs observes")
        if not 0 <= recipe.drawn_share <= 1:
            raise MaagError(f"drawn_share must be within 0..1, got {recipe.drawn_share}")
        if recipe.drawn_share and not recipe.drawn_model:
            raise MaagError("drawn_share needs drawn_model: the model folder whose generator draws")
        if recipe.drawn_count < 1:
            raise MaagError(f"drawn_count must be 1 or more, got {recipe.drawn_count}")
        if not 0 <= recipe.played_share <= 1:
            raise MaagError(f"played_share must be within 0..1, got {recipe.played_share}")
        if recipe.played_share and not recipe.played_data:
            raise MaagError("played_share needs played_data: folders of `maag data --model`")
        self.spec = spec
        if recipe.focus and spec.follow is None:
            raise MaagError(f"focus looks around a player, but {spec.name}'s camera follows none")
        if recipe.map_view and not (spec.moves or spec.follow):
            raise MaagError(f"map_view reads the spatial map, but {spec.name}'s view never moves")
        if recipe.tiles and (spec.tile is None or not recipe.focus):
            raise MaagError(
                f"tiles reads a focus window of tiles: it needs a game drawn on tiles "
                f"({spec.name}: {'yes' if spec.tile else 'no'}) and focus"
            )
        network = LogicNet(
            frame_size=spec.frame_height,
            context_frames=recipe.context_frames,
            num_actions=len(spec.actions),
            event_names=spec.event_names,
            max_count=recipe.max_count,
            width=recipe.width,
            chance=spec.chance,
            focus=recipe.focus,
            hud_height=spec.hud_height,
            observes=recipe.observes,
            aligned=recipe.aligned,
            extra_channels=4 if recipe.map_view else 0,
            read_tiles=recipe.tiles,
            tile_size=spec.tile[0] if spec.tile else 4,
            max_tiles=recipe.max_tiles,
        )
        if recipe.tiles and episodes is not None:
            network.set_tiles(training_tiles(episodes, spec, recipe.max_tiles))
        return network

    def loss(self, model, batch, recipe: LogicNetRecipe, noise, device):
        from maag.transitions import logicnet_logits

        if self.drawn is not None:
            batch = self.drawn.mixed_into(batch, recipe.drawn_share, noise)
        if self.played is not None:
            batch = self.played.mixed_into(batch, recipe.played_share, noise)
        logits = logicnet_logits(model, batch, device)
        counts = batch["events"].clamp(max=recipe.max_count).to(device)
        return F.cross_entropy(logits.flatten(0, 1).float(), counts.flatten())

    def evaluate(
        self, ema, episodes, recipe: LogicNetRecipe, count: int = 8192
    ) -> dict[str, float]:
        scores = held_out_scores(ema, episodes, count, _maps(episodes, self.spec, recipe.map_view))
        return {f"{name}_f1": s["f1"] for name, s in scores.items()}

    def prepare(self, episodes, recipe: LogicNetRecipe):
        """With `drawn_share`, the generator's drawings of the last context frames; with
        `played_share`, the episodes a model played."""
        if recipe.played_share:
            self.played = PlayedFrames(
                recipe.played_data, self.spec, recipe.context_frames, recipe.event_share,
                recipe.map_view,
            )  # fmt: skip
        maps = _maps(episodes, self.spec, recipe.map_view)
        if recipe.drawn_share:
            self.drawn = DrawnFrames(
                episodes, self.spec, recipe.drawn_model, recipe.context_frames,
                recipe.drawn_count, recipe.seed, recipe.observes, recipe.map_view, maps,
            )  # fmt: skip
        return maps

    def sample(self, path: Path, ema, spec, episodes, recipe) -> None:
        """LogicNet draws nothing to look at."""


def held_out_scores(
    logicnet, episodes: dict, count: int = 4096, maps=None
) -> dict[str, dict[str, float]]:
    """Per-event precision/recall/F1 of `logicnet` on evenly spread held-out transitions
    (with their `maps`, MapViews, for a LogicNet that reads the map)."""
    from maag.transitions import TransitionSampler, logicnet_logits

    transitions = TransitionSampler(episodes, logicnet.config.context_frames, maps=maps)
    episode, target = transitions.evenly_spaced(count)
    predicted, true = [], []
    for start in range(0, count, 256):
        batch = transitions.gather(episode[start : start + 256], target[start : start + 256])
        with torch.inference_mode():
            predicted.append(logicnet_logits(logicnet, batch).argmax(dim=-1).cpu().numpy())
        true.append(batch["events"].numpy())
    return event_scores(
        np.concatenate(predicted), np.concatenate(true), logicnet.config.event_names
    )


def train_logicnet(recipe: LogicNetRecipe, out: str | Path, resume: bool = False, progress=True):
    """Train (or resume) a LogicNet run in folder `out`."""
    return train(LogicNetTask(), recipe, out, resume, progress)
