"""Where a LogicNet decides an event wrongly on the engine's own frames, and whether the
step's random draws could have made its call right.

    python benchmarks/logicnet_errors.py --model models/pacman --data data/pacman-more-train
        [--episodes 40]

Scores the model folder's LogicNet on every transition of the data's first `--episodes`
episodes (made by `maag data` on the engine, no `--map` or `--model`). At each step whose
count of an event it decides (the spec's events but those the record fires) it gets wrong,
the episode is replayed on the game's engine from the data's seeds and the step is tried
under every combination of its random draws (`GameSpec.chance`): "some draw gives it" means
the call is what the step would have been under other draws (the draws misread), "no draw
gives it" that no draw makes it so (the rules misread). Prints per event the wrong steps,
called (more than happened) and missed, split so. With `--observer` the model's observer is
scored instead (it reads each step's outcome), and where the data holds the engine's
alternative outcomes, also how many of those it reads as they came out.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
from collections import Counter

import numpy as np
import torch

import maag
from maag.data import Dataset, episode_seeds
from maag.errors import MaagError
from maag.games import get_game
from maag.transitions import TransitionSampler, first_episodes, load_episodes, logicnet_logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model folder whose LogicNet decides")
    parser.add_argument("--data", required=True, help="held-out dataset folder (engine play)")
    parser.add_argument("--episodes", type=int, default=40, help="its first N episodes")
    parser.add_argument("--observer", action="store_true", help="score the model's observer")
    args = parser.parse_args()
    try:
        wrong = logicnet_errors(args.model, args.data, args.episodes, args.observer)
    except MaagError as exc:
        sys.exit(f"error: {exc}")
    for (event, kind), counts in sorted(wrong.items()):
        split = ", ".join(f"{n} {why}" for why, n in sorted(counts.items()))
        print(f"{event} {kind}: {sum(counts.values())} ({split})")
    print(f"wrong calls in all: {sum(sum(c.values()) for c in wrong.values())}")


def logicnet_errors(
    model: str, data: str, episodes: int, observer: bool = False
) -> dict[tuple[str, str], Counter]:
    """{(event, "called" | "missed"): {"some draw gives it" | "no draw gives it": steps}}
    of the model's LogicNet (or its `observer`)."""
    dataset = Dataset(data)
    if dataset.manifest.get("model") or dataset.manifest.get("map_sha256"):
        raise MaagError(f"{data} was not played by the engine in its own maze: cannot replay it")
    game = maag.load(model, game=dataset.spec.name)
    spec, net = game.spec, game.observer if observer else game.logicnet
    if net is None:
        raise MaagError(f"{model} has no {'observer' if observer else 'LogicNet'}")
    held_out = first_episodes(load_episodes(data, game=spec.name), episodes)
    if observer:
        alternatives_read(net, spec, held_out)
    count, steps = held_out["actions"].shape
    transitions = TransitionSampler(held_out, net.config.context_frames)
    episode, target = transitions.evenly_spaced(count * steps)  # every transition, in order
    called = np.empty((count * steps, len(spec.events)), np.int64)
    for start in range(0, len(episode), 1024):
        rows = slice(start, start + 1024)
        with torch.inference_mode():
            batch = transitions.gather(episode[rows], target[rows])
            called[rows] = logicnet_logits(net, batch).argmax(-1).numpy()
    happened = held_out["events"][:, 1:].reshape(count * steps, -1).astype(np.int64)
    decided = np.array([event.when is None for event in spec.events])
    wrong_steps = np.flatnonzero(((called != happened) & decided).any(axis=1))
    draws = list(itertools.product(*(range(n) for n in spec.chance)))
    definition, seed = get_game(spec.name), dataset.manifest["seed"]
    wrong: dict[tuple[str, str], Counter] = {}
    for index in np.unique(wrong_steps // steps):
        engine_seed, _ = episode_seeds(seed, int(index))
        engine = definition.engine(engine_seed)
        engine.reset(engine_seed)
        done = 0
        for flat in wrong_steps[wrong_steps // steps == index]:
            t = int(flat % steps)
            for action in held_out["actions"][index, done:t]:
                engine.step(int(action))
            done = t
            action = int(held_out["actions"][index, t])
            outcomes = [copy.deepcopy(engine).step(action, draw).events for draw in draws]
            for k, event in enumerate(spec.events):
                if not decided[k] or called[flat, k] == happened[flat, k]:
                    continue
                given = any(events.count(event.name) == called[flat, k] for events in outcomes)
                kind = "called" if called[flat, k] > happened[flat, k] else "missed"
                why = "some draw gives it" if given else "no draw gives it"
                wrong.setdefault((event.name, kind), Counter())[why] += 1
    return wrong


def alternatives_read(observer, spec, episodes: dict[str, np.ndarray]) -> None:
    """Print how many of the engine's alternative outcomes in `episodes` (and of the true
    steps they stand beside) `observer` reads with their own events."""
    if not len(episodes["alt_step"]):
        return
    transitions = TransitionSampler(episodes, observer.config.context_frames)
    episode, target = episodes["alt_step"].T
    batch = transitions.gather(episode, target)
    with torch.inference_mode():
        true_read = logicnet_logits(observer, batch).argmax(-1).numpy()
        batch["target"] = torch.from_numpy(episodes["alt_frames"])
        batch["camera_move"] = batch["camera_move"] + (
            episodes["alt_camera"] - episodes["camera"][episode, target]
        )
        alternative_read = logicnet_logits(observer, batch).argmax(-1).numpy()
    decided = [event.when is None for event in spec.events]  # the record fires the rest
    right = (alternative_read == episodes["alt_events"])[:, decided].all(axis=1).sum()
    true_right = (true_read == episodes["events"][episode, target])[:, decided].all(axis=1).sum()
    print(
        f"alternatives read with their events: {right} of {len(episode)} "
        f"(the true steps beside them: {true_right})"
    )


if __name__ == "__main__":
    main()
