"""Where a generative game's rollouts first go wrong, and what it draws there.

    python benchmarks/first_failures.py --model models/pong [--episodes 4] [--steps 1000]
        [--map FILE] [--probe] [--out failures/]

Plays the benchmark's episodes (`maag bench`'s agent and seeds; with `--map`, as `maag
bench --map` does: the model's map pre-filled with that world and the referee playing by
it) and prints, per episode, NumCon, the share of readable frames and the first step whose
shown values the referee does not accept, with the events the record took there and those
the referee read in the frames (and at the step where those first differ, if earlier);
`--out` writes a strip of the frames around that step (4x scale) per episode. With
`--probe`, the engine plays the same episode up to that step and the generator draws the
failing frame from the engine's own context frames (teacher-forced) with each event told
to it in turn (with event tokens; none, then each event once), at 2 and 8 sampler steps
(generators with a map input are not probed yet): the reader's account of each drawing
says whether the failure is the generator's, and whether the event tokens steer it.
`--data` then finds the same scene in the training data and draws those transitions too: a
scene the data holds often but the generator draws wrong is one it has not fitted.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from maag.bench import contenders, play_episode
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


def draw(
    game: GenerativeGame, contexts: np.ndarray, actions, ids, steps: int, seed: int = 0
) -> np.ndarray:
    """Frames (B, H, W, 3) drawn from context frames (B, K, H, W, 3) uint8, the actions
    and the condition token ids (B, N), over a blanked HUD, snapped to the palette."""
    from maag.models.flow import FlowSampler, stack_context, to_uint8, to_unit
    from maag.numerical import blank_hud

    hud = game.spec.hud_height
    context = to_unit(torch.as_tensor(contexts))
    every = torch.ones(len(context), dtype=torch.bool)
    base, context = blank_hud(context[:, -1], every, hud), blank_hud(context, every, hud)
    frames = FlowSampler(steps).sample(
        game.generator, base=base, context=stack_context(context),
        action=torch.as_tensor(actions), generator=torch.Generator().manual_seed(seed),
        cond_ids=torch.as_tensor(ids),
    )  # fmt: skip
    pixels = to_uint8(frames).numpy()
    if game.palette is not None:
        pixels = game.palette.snap(pixels, hud)
    return pixels


def probe(game: GenerativeGame, definition, frames, values, actions, t: int) -> np.ndarray:
    """Draw frame `t` from the engine's frames t-K..t-1, told each event in turn: the
    engine's frame and every drawing side by side."""
    spec = definition.spec
    contexts = np.stack(frames[t - game.generator.config.context_frames : t])[None]
    drawn = [frames[t]]
    print(f"  step {t}, the engine's frame reads: {brief(definition.read_frame(frames[t]))}")
    for events in [()] + [(e.name,) for e in spec.events]:
        counts = [int(name in events) for name in spec.event_names]
        shown = spec.apply_events(values[t - 1], events)
        ids = [game.tokens.encode(shown, counts if game.tokens.event_names else ())]
        for steps in (2, 8):
            drawn.append(draw(game, contexts, [actions[t - 1]], ids, steps)[0])
            reading = brief(definition.read_frame(drawn[-1]))
            print(f"  told {events or 'no event'}, {steps} steps: {reading}")
    return np.concatenate(drawn, axis=1)


def in_training_data(game: GenerativeGame, definition, data: str, frame: np.ndarray) -> None:
    """The transitions of `data` into the same scene as `frame` (the HUD aside), drawn
    teacher-forced with their true tokens: how many the reader reads as the data shows."""
    from maag.transitions import TransitionSampler, load_episodes

    hud = game.spec.hud_height
    episodes = load_episodes(data, game=game.spec.name)
    same = (episodes["frames"][:, 1:, hud:] == frame[hud:]).all(axis=(2, 3, 4))
    episode, target = np.nonzero(same)
    episode, target = episode[:64], target[:64] + 1
    if not len(episode):
        print(f"  {data} never shows this scene")
        return
    batch = TransitionSampler(episodes, game.generator.config.context_frames).gather(
        episode, target
    )
    every = torch.ones(len(episode), dtype=torch.bool)
    events = batch["events"] if game.tokens.event_names else None
    ids = game.tokens.batch(batch["values"], every, events)
    drawn = draw(game, batch["context"].numpy(), batch["action"], ids, 2)
    right = sum(
        definition.read_frame(d) == definition.read_frame(f)
        for d, f in zip(drawn, batch["target"].numpy(), strict=True)
    )
    print(f"  {data} shows this scene {int(same.sum())} times: {right} of {len(drawn)} drawn right")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=12345, help="maag bench's default")
    parser.add_argument("--map", help="a map file of the game's custom maps, as maag bench --map")
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--data", help="with --probe: the training data, searched for the scene")
    args = parser.parse_args()
    torch.set_num_threads(1)
    game = load(args.model)
    definition = get_game(game.spec.name)
    agent = next(iter(definition.agents))
    rows = contenders(definition, [args.model], ("full", "baseline"), args.map)
    model_row = rows[1]  # after the engine's: every module the model has on
    for index in range(args.episodes):
        game = model_row.make(episode_seeds(args.seed, index)[0])
        trace = play_episode(definition, game, agent, args.steps, args.seed, index, True, args.map)
        numcon, readable = np.array(trace.numcon), np.array(trace.readable)
        failing = np.flatnonzero(~numcon)
        first = int(failing[0]) + 1 if failing.size else None
        print(
            f"episode {index}: NumCon {numcon.mean():.3f}, readable {readable.mean():.3f}, "
            f"first failing step {first}"
        )
        if first is None:
            continue
        parted = [
            t + 1
            for t, (told, read) in enumerate(zip(trace.told_events, trace.true_events, strict=True))
            if sorted(told) != sorted(read)
        ]
        for t in sorted({first, *parted[:1]}):
            print(
                f"  step {t}: the record took {list(trace.told_events[t - 1])}, "
                f"the referee read {list(trace.true_events[t - 1])}"
            )
        strips = {"rollout": np.concatenate(trace.frames[max(0, first - 4) : first + 3], axis=1)}
        if args.probe and (game.tokens is None or game.map_inputs):
            print("  --probe needs a generator with digit tokens and no map inputs (yet)")
        elif args.probe:
            episode = engine_frames(definition, agent, args.seed, index, first)
            strips["probe"] = probe(game, definition, *episode, first)
            if args.data:
                in_training_data(game, definition, args.data, episode[0][first])
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            for name, strip in strips.items():
                big = np.kron(strip, np.ones((4, 4, 1), np.uint8))
                iio.imwrite(args.out / f"episode-{index}-{name}.png", big)


if __name__ == "__main__":
    main()
