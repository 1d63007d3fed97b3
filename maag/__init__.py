"""maag: a generative game engine.

`maag.make(name)` gives a ground-truth engine, `maag.load(folder)` a generative game;
both implement the same reset/step protocol.
"""

from __future__ import annotations

from maag.errors import MaagError
from maag.spec import Game, GameSpec, Step

__all__ = ["Game", "GameSpec", "MaagError", "Step", "load", "make"]


def make(name: str, seed: int = 0) -> Game:
    """The ground-truth engine of game `name`, seeded with `seed`."""
    from maag.games import get_game

    return get_game(name).engine(seed)


def load(
    path: str,
    game: str | None = None,
    sampler_steps: int | None = None,
    seed: int = 0,
    numerical: bool | None = None,
    spatial: bool | None = None,
    reveal_sampler_steps: int | None = None,
) -> Game:
    """The generative game in model folder `path`; modules on where it has them."""
    from maag.generative import load as load_model

    return load_model(path, game, sampler_steps, seed, numerical, spatial, reveal_sampler_steps)
