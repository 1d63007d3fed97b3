"""maag: a generative game engine. `maag.make(name)` gives a ground-truth engine."""

from __future__ import annotations

from maag.errors import MaagError
from maag.spec import Game, GameSpec, Step

__all__ = ["Game", "GameSpec", "MaagError", "Step", "make"]


def make(name: str, seed: int = 0) -> Game:
    """The ground-truth engine of game `name`, seeded with `seed`."""
    from maag.games import get_game

    return get_game(name).engine(seed)
