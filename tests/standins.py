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
    """A stand-in generator that draws a recorded episode's frames (one per call, or the
    one `frame_of()` says: the same frame drawn again); keeps its inputs (base, map
    channels, condition tokens) in `seen`, its noisy inputs in `noisy`, the chance draws
    in `told` and the context's camera moves in `moves`."""

    def __init__(self, frames, spec: GameSpec, extra_channels=4, tokens=None, frame_of=None):
        super().__init__()
        tokens = tokens or DigitTokenizer(spec)
        self.config = SimpleNamespace(
            context_frames=4,
            extra_channels=extra_channels,
            num_cond_tokens=tokens.num_tokens,
            player_tile=0,
        )
        self.frames, self.t, self.seen, self.told, self.moves = frames, 0, [], [], []
        self.frame_of, self.noisy = frame_of, []

    def forward(self, noisy, sigma, base, context, action, corruption, extra=None,
                cond_ids=None, chance=None, context_moves=None):  # fmt: skip
        self.t += 1
        self.noisy.append(noisy.clone())
        self.moves.append(context_moves)
        self.seen.append((base.clone(), None if extra is None else extra.clone(), cond_ids))
        self.told.append(_draws(chance))
        index = self.frame_of() if self.frame_of else self.t
        return to_unit(torch.from_numpy(self.frames[index]))[None] - base


class EngineEvents(torch.nn.Module):
    """A stand-in LogicNet reporting the recorded episode's events (in spec order); keeps
    the chance draws it is told in `told` and, with `focus`, the player's places in
    `players`."""

    def __init__(self, events, spec: GameSpec, focus: int = 0):
        super().__init__()
        self.config = SimpleNamespace(
            event_names=spec.event_names,
            context_frames=1,
            focus=focus,
            observes=False,
            extra_channels=0,
        )
        self.events, self.t, self.told, self.players = events, 0, [], []

    def predict(self, context, action, chance=None, player=None):
        self.t += 1
        self.told.append(_draws(chance))
        if self.config.focus:
            self.players.append(tuple(player[0].tolist()))
        return torch.from_numpy(self.events[self.t][None].astype(np.int64))


class ObservedEvents(torch.nn.Module):
    """A stand-in observer: certain of the recorded episode's events of the step the game
    `game_of()` is playing; keeps its input frames in `inputs`, its map views in `extras`."""

    def __init__(
        self, events, spec: GameSpec, game_of, max_count=2, extra_channels=0, aligned=False
    ):
        super().__init__()
        self.config = SimpleNamespace(
            event_names=spec.event_names, context_frames=2, focus=0, observes=True,
            hud_height=spec.hud_height, extra_channels=extra_channels, aligned=aligned,
        )  # fmt: skip
        self.events, self.game_of, self.max_count, self.inputs = events, game_of, max_count, []
        self.extras = []

    def forward(self, frames, action, extra=None, chance=None, player=None):
        self.inputs.append(frames.clone())
        self.extras.append(extra)
        counts = torch.from_numpy(self.events[self.game_of().t + 1].astype(np.int64))
        return torch.nn.functional.one_hot(counts, self.max_count + 1).float()[None] * 10
