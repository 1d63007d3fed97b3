"""Ground-truth games: one module per game, each exporting GAME (a GameDefinition)."""

from __future__ import annotations

from maag.errors import MaagError
from maag.spec import Agent, GameDefinition

from . import pacman, pong, traveler

GAMES: dict[str, GameDefinition] = {g.GAME.spec.name: g.GAME for g in (traveler, pong, pacman)}


def get_game(name: str) -> GameDefinition:
    """The game registered under `name`, or MaagError listing the known ones."""
    try:
        return GAMES[name]
    except KeyError:
        raise MaagError(f"unknown game {name!r} (choose from {', '.join(GAMES)})") from None


def make_agent(game: str, agent: str, seed: int) -> Agent:
    """A scripted agent of `game` by name (e.g. 'wanderer', 'random')."""
    definition = get_game(game)
    try:
        factory = definition.agents[agent]
    except KeyError:
        raise MaagError(
            f"unknown agent {agent!r} for {game} (choose from {', '.join(definition.agents)})"
        ) from None
    return factory(definition.spec, seed)
