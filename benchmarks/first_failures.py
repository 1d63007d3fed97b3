"""Where a generative game's rollouts first go wrong, and what it draws there.

    python benchmarks/first_failures.py --model models/pong [--episodes 4] [--steps 1000]
        [--probe] [--out failures/]

Plays the benchmark's episodes (`maag bench`'s agent and seeds) and prints, per episode,
NumCon, the share of readable frames and the first step whose shown values the referee
does not accept; `--out` writes a strip of the frames around that step (4x scale) per
episode. With `--probe`, the engine plays the same episode up to that step and the
generator draws the failing frame from the engine's own context frames (teacher-forced)
with each event told to it in turn (with event tokens; none, then each event once), at 2
and 8 sampler steps (generators with a map input are not probed yet): the reader's
account of each drawing says whether the failure is the generator's, and whether the event
tokens steer it.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from maag.bench import play_episode
from maag.data import episode_seeds
from maag.games import get_game, make_agent
from maag.generative import GenerativeGame, load


def engine_frames(definition, agent: str, seed: int, index: int, steps: int):
    """The engine's frames, values and actions of benchmark episode `index`, steps 0..`steps`."""
    engine_seed, agent_seed = episode_seeds(seed, index)
    engine, player = (
        definition.engine(engine_seed),
        make_agent(definition.spec.name, agent, agent_seed),
    )
    step = engine.reset(engine_seed)
    frames, values, actions = [step.frame], [step.values], []
    for _ in range(steps):
        actions.append(player.act(step))
        step = engine.step(actions[-1])
        frames.append(step.frame)
        values.append(step.values)
    return frames, values, actions


def brief(reading) -> str:
    """A reading's short fields (a Pac-Man view's tile grid left out)."""
    shown = {f.name: getattr(reading, f.name) for f in dataclasses.fields(reading)}
    return ", ".join(f"{k} {v}" for k, v in shown.items() if len(repr(v)) < 80)


def probe(game: GenerativeGame, definition, frames, values, actions, t: int) -> np.ndarray:
    """Draw frame `t` from the engine's frames t-K..t-1, told each event in turn: the
    engine's frame and every drawing side by side."""
    from maag.models.flow import FlowSampler, stack_context, to_uint8, to_unit
    from maag.numerical import blank_hud

    spec, hud = definition.spec, definition.spec.hud_height
    k = game.generator.config.context_frames
    context = to_unit(torch.from_numpy(np.stack(frames[t - k : t])))[None]
    every = torch.ones(1, dtype=torch.bool)
    base, context = blank_hud(context[:, -1], every, hud), blank_hud(context, every, hud)
    told = [()] + [(e.name,) for e in spec.events]
    drawn = [frames[t]]
    print(f"  step {t}, the engine's frame reads: {brief(definition.read_frame(frames[t]))}")
    for events in told:
        counts = [int(name in events) for name in spec.event_names]
        shown = spec.apply_events(values[t - 1], events)
        ids = torch.tensor([game.tokens.encode(shown, counts if game.tokens.event_names else ())])
        for steps in (2, 8):
            frame = FlowSampler(steps).sample(
                game.generator, base=base, context=stack_context(context),
                action=torch.tensor([actions[t - 1]]), generator=torch.Generator().manual_seed(0),
                cond_ids=ids,
            )  # fmt: skip
            pixels = np.ascontiguousarray(to_uint8(frame[0]).numpy())
            if game.palette is not None:
                pixels = game.palette.snap(pixels, hud)
            drawn.append(pixels)
            reading = brief(definition.read_frame(pixels))
            print(f"  told {events or 'no event'}, {steps} steps: {reading}")
    return np.concatenate(drawn, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=12345, help="maag bench's default")
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    game = load(args.model)
    definition = get_game(game.spec.name)
    agent = next(iter(definition.agents))
    for index in range(args.episodes):
        game = load(args.model, seed=episode_seeds(args.seed, index)[0])
        trace = play_episode(definition, game, agent, args.steps, args.seed, index, True)
        numcon, readable = np.array(trace.numcon), np.array(trace.readable)
        failing = np.flatnonzero(~numcon)
        first = int(failing[0]) + 1 if failing.size else None
        print(
            f"episode {index}: NumCon {numcon.mean():.3f}, readable {readable.mean():.3f}, "
            f"first failing step {first}"
        )
        if first is None:
            continue
        strips = {"rollout": np.concatenate(trace.frames[max(0, first - 4) : first + 3], axis=1)}
        if args.probe and (game.tokens is None or game.map_inputs):
            print("  --probe needs a generator with digit tokens and no map inputs (yet)")
        elif args.probe:
            episode = engine_frames(definition, agent, args.seed, index, first)
            strips["probe"] = probe(game, definition, *episode, first)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            for name, strip in strips.items():
                big = np.kron(strip, np.ones((4, 4, 1), np.uint8))
                iio.imwrite(args.out / f"episode-{index}-{name}.png", big)


if __name__ == "__main__":
    main()
