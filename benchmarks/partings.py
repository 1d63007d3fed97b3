"""Every step where a generative game's shown values part from the rules, not just the first.

    python benchmarks/partings.py --model models/pacman [--episodes 16] [--steps 1000]
        [--seed 12345] [--map FILE] [--first 0]

Plays `maag bench`'s episodes (its agent and seeds; with `--map`, as `maag bench --map`
does) with every module the model has on, and judges each frame with the game's referee as
the benchmark does. NumCon counts a parting against every later step, so two models are
told apart by the few first partings of 16 episodes. Here the referee takes the values
shown after each parting (its arithmetic starts again from the screen), so that every
parting is counted once: each is printed with the events the record took and the
referee read, then the count by kind and per 1,000 steps. `--first` starts at another
episode index (two processes can split the benchmark's episodes between them).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import torch

from maag.bench import contenders
from maag.data import episode_seeds
from maag.errors import MaagError
from maag.games import get_game, make_agent


def partings(
    model: str, episodes: range, steps: int, seed: int, world: str | None = None
) -> tuple[list[tuple[int, int, tuple[str, ...], tuple[str, ...]]], int]:
    """([(episode, step, events the record took, events the referee read)], steps played)
    over the benchmark's `episodes`; only events that change a value are listed."""
    definition = get_game(maag_game(model))
    if definition.referee is None:
        raise MaagError(f"{definition.spec.name} has no referee: nothing judges its frames")
    spec, read = definition.spec, definition.read_frame
    row = contenders(definition, [model], ("full",), world)[-1]
    agent_name = next(iter(definition.agents))
    found = []
    for index in episodes:
        engine_seed, agent_seed = episode_seeds(seed, index)
        game, agent = row.make(engine_seed), make_agent(spec.name, agent_name, agent_seed)
        referee = definition.referee() if world is None else definition.referee(world)
        step = game.reset(engine_seed)
        referee.start(read(step.frame))
        for t in range(1, steps + 1):
            action = agent.act(step)
            step = game.step(action)
            reading = read(step.frame)
            judgement = referee.judge(action, reading)
            if reading.values == judgement.values:
                continue
            took = tuple(e for e in step.events if spec.event(e).effects)
            seen = tuple(e for e in judgement.events if spec.event(e).effects)
            found.append((index, t, took, seen))
            if reading.values is not None:  # the rules go on from what the screen shows
                referee.values = dict(reading.values)
    return found, len(episodes) * steps


def maag_game(model: str) -> str:
    """The game a model folder plays (MaagError where it is no model folder)."""
    from maag.generative import read_model_config

    return read_model_config(model)["game"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=12345, help="maag bench's default")
    parser.add_argument("--map", help="a map file of the game's custom maps, as maag bench --map")
    parser.add_argument("--first", type=int, default=0, help="the first episode's index")
    args = parser.parse_args()
    if args.episodes < 1 or args.steps < 1 or args.first < 0:
        sys.exit("error: --episodes and --steps must be at least 1, --first at least 0")
    torch.set_num_threads(1)
    try:
        episodes = range(args.first, args.first + args.episodes)
        found, played = partings(args.model, episodes, args.steps, args.seed, args.map)
    except MaagError as exc:
        sys.exit(f"error: {exc}")
    for index, t, took, seen in found:
        print(f"episode {index} step {t}: the record took {list(took)}, read {list(seen)}")
    kinds = Counter(f"took {list(took)}, read {list(seen)}" for *_, took, seen in found)
    for kind, count in kinds.most_common():
        print(f"{count} x {kind}")
    parted = len({index for index, *_ in found})
    print(
        f"{len(found)} partings in {played} steps ({1000 * len(found) / played:.2f} per 1,000 "
        f"steps), {parted} of {len(episodes)} episodes parted"
    )


if __name__ == "__main__":
    main()
