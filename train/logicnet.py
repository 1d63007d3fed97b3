"""`maag train logicnet`: LogicNet on the same shards and the same loop as the generator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from maag.errors import MaagError
from maag.spec import GameSpec

from .loop import Recipe, train


@dataclass
class LogicNetRecipe(Recipe):
    network: ClassVar[str] = "logicnet"
    context_frames: int = 2
    width: int = 32
    max_count: int = 2
    focus: int = 0  # pixels of a closer look around the player (GameSpec.follow); 0: none
    lr: float = 1e-3
    steps: int = 2000
    mixed_precision: str = "no"


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


class LogicNetTask:
    def build(self, recipe: LogicNetRecipe, spec: GameSpec):
        from maag.models.logicnet import LogicNet

        for name in ("alternative_share", "rollout_share"):
            if getattr(recipe, name):
                raise MaagError(f"{name} is for generators: a LogicNet draws no frames")
        if recipe.focus and spec.follow is None:
            raise MaagError(f"focus looks around a player, but {spec.name}'s camera follows none")
        return LogicNet(
            frame_size=spec.frame_height,
            context_frames=recipe.context_frames,
            num_actions=len(spec.actions),
            event_names=spec.event_names,
            max_count=recipe.max_count,
            width=recipe.width,
            chance=spec.chance,
            focus=recipe.focus,
            hud_height=spec.hud_height,
        )

    def loss(self, model, batch, recipe: LogicNetRecipe, noise, device):
        from maag.transitions import logicnet_logits

        logits = logicnet_logits(model, batch, device)
        counts = batch["events"].clamp(max=recipe.max_count).to(device)
        return F.cross_entropy(logits.flatten(0, 1).float(), counts.flatten())

    def evaluate(
        self, ema, episodes, recipe: LogicNetRecipe, count: int = 8192
    ) -> dict[str, float]:
        scores = held_out_scores(ema, episodes, count)
        return {f"{name}_f1": s["f1"] for name, s in scores.items()}

    def prepare(self, episodes, recipe):
        return None

    def sample(self, path: Path, ema, spec, episodes, recipe) -> None:
        """LogicNet draws nothing to look at."""


def held_out_scores(logicnet, episodes: dict, count: int = 4096) -> dict[str, dict[str, float]]:
    """Per-event precision/recall/F1 of `logicnet` on evenly spread held-out transitions."""
    from maag.transitions import TransitionSampler, logicnet_logits

    transitions = TransitionSampler(episodes, logicnet.config.context_frames)
    episode, target = transitions.evenly_spaced(count)
    predicted, true = [], []
    for start in range(0, count, 256):
        batch = transitions.gather(episode[start : start + 256], target[start : start + 256])
        with torch.inference_mode():
            predicted.append(logicnet_logits(logicnet, batch).argmax(dim=-1).numpy())
        true.append(batch["events"].numpy())
    return event_scores(
        np.concatenate(predicted), np.concatenate(true), logicnet.config.event_names
    )


def train_logicnet(recipe: LogicNetRecipe, out: str | Path, resume: bool = False, progress=True):
    """Train (or resume) a LogicNet run in folder `out`."""
    return train(LogicNetTask(), recipe, out, resume, progress)
