"""Stand-in networks for the generative game's tests: they replay a recorded episode and
keep what play told them."""

from types import SimpleNamespace

import numpy as np
import torch

from maag.models.flow import to_unit
from maag.numerical import DigitTokenizer
from maag.spec import GameSpec


def _draws(chance) -> tuple[int, ...]:
    return () if chance is None else tuple(chance[0].tolist())


class Replay(torch.nn.Module):
    """A stand-in generator that draws a recorded episode's frames; keeps its inputs
    (base, map channels, condition tokens) in `seen` and the chance draws in `told`."""

    def __init__(self, frames, spec: GameSpec, extra_channels=4, tokens=None):
        super().__init__()
        tokens = tokens or DigitTokenizer(spec)
        self.config = SimpleNamespace(
            context_frames=4, extra_channels=extra_channels, num_cond_tokens=tokens.num_tokens
        )
        self.frames, self.t, self.seen, self.told = frames, 0, [], []

    def forward(self, noisy, sigma, base, context, action, corruption, extra=None,
                cond_ids=None, chance=None):  # fmt: skip
        self.t += 1
        self.seen.append((base.clone(), None if extra is None else extra.clone(), cond_ids))
        self.told.append(_draws(chance))
        return to_unit(torch.from_numpy(self.frames[self.t]))[None] - base


class EngineEvents(torch.nn.Module):
    """A stand-in LogicNet reporting the recorded episode's events (in spec order); keeps
    the chance draws it is told in `told` and, with `focus`, the player's places in
    `players`."""

    def __init__(self, events, spec: GameSpec, focus: int = 0):
        super().__init__()
        self.config = SimpleNamespace(event_names=spec.event_names, context_frames=1, focus=focus)
        self.events, self.t, self.told, self.players = events, 0, [], []

    def predict(self, context, action, chance=None, player=None):
        self.t += 1
        self.told.append(_draws(chance))
        if self.config.focus:
            self.players.append(tuple(player[0].tolist()))
        return torch.from_numpy(self.events[self.t][None].astype(np.int64))
