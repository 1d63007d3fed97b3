"""Measurements of a generator against ground truth."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from maag.numerical import DigitTokenizer, blank_hud
from maag.palette import Palette
from maag.spatial import generator_inputs, player_moves
from maag.transitions import MapViews, TransitionSampler, drop_new_sprites


def psnr(mse: float) -> float:
    """PSNR in dB of 8-bit images from their mean squared error (inf when identical)."""
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def draw_next(
    generator: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    sampler,
    noise: torch.Generator,
    tokens: DigitTokenizer | None = None,
    maps: MapViews | None = None,
    palette: Palette | None = None,
) -> torch.Tensor:
    """The generator's next frames (B, H, W, 3) uint8 on the CPU for a batch of transitions
    (see `TransitionSampler.gather`), teacher-forced: with `tokens`, told the batch's values
    and events as by a perfect record; with `maps`, the map's views of the true past frames;
    with `palette`, snapped to it (where the generator runs). A generator built for a module
    that is not given gets the module's "off" inputs, as in play."""
    from maag.models.flow import device_of, stack_context, to_uint8, to_unit

    config, device = generator.config, device_of(generator)
    context = to_unit(batch["context"].to(device))  # the inputs are made where it runs
    n, hud = len(context), config.hud_height
    base, extra = context[:, -1], None
    if maps:
        player = player_moves(batch) if config.player_tile else None
        base, extra = generator_inputs(
            base, batch["canvas"], batch["known"], hud, batch["camera_move"], batch["sprites"],
            player, config.player_tile,
        )  # fmt: skip
    elif config.extra_channels:  # module off: a map that knows nothing, as in play
        h, w = context.shape[-2] - hud, context.shape[-1]
        empty = np.zeros((n, h, w, 3), np.uint8), np.zeros((n, h, w), bool)
        base, extra = generator_inputs(base, *empty, hud)
    cond_ids = None
    if tokens:
        every = torch.ones(n, dtype=torch.bool)
        cond_ids = tokens.batch(batch["values"], every, batch["events"])
        base, context = blank_hud(base, every, hud), blank_hud(context, every, hud)
    elif config.num_cond_tokens:  # module off: null tokens, as in play
        cond_ids = torch.full((n, config.num_cond_tokens), DigitTokenizer.NULL)
    frames = sampler.sample(
        generator, base, stack_context(context), batch["action"].to(device), noise, extra=extra,
        cond_ids=None if cond_ids is None else cond_ids.to(device),
        chance=batch["chance"].to(device),
        context_moves=torch.as_tensor(batch["context_moves"]) if "context_moves" in batch else None,
    )  # fmt: skip
    frames = to_uint8(frames)
    if palette is not None:
        frames = palette.snap(frames, hud)
    return frames.cpu()


def teacher_forced_drawings(
    generator: torch.nn.Module,
    episodes: dict[str, np.ndarray],
    sampler_steps: int,
    count: int,
    batch_size: int = 64,
    seed: int = 0,
    tokens: DigitTokenizer | None = None,
    maps: MapViews | None = None,
    palette: Palette | None = None,
    picks: tuple[np.ndarray, np.ndarray] | None = None,
) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """(batch, drawn frames) for `count` evenly spread transitions, or for the (episode,
    target) arrays `picks`, `batch_size` at a time (inputs as in `draw_next`), with the
    generator in eval mode meanwhile."""
    from maag.models.flow import sampler_for

    transitions = TransitionSampler(episodes, generator.config.context_frames, maps=maps)
    episode, target = transitions.evenly_spaced(count) if picks is None else picks
    sampler = sampler_for(generator, sampler_steps)
    noise = torch.Generator().manual_seed(seed)
    was_training = generator.training
    generator.eval()
    try:
        for start in range(0, len(episode), batch_size):
            rows = slice(start, start + batch_size)
            batch = transitions.gather(episode[rows], target[rows])
            yield batch, draw_next(generator, batch, sampler, noise, tokens, maps, palette)
    finally:
        generator.train(was_training)


def teacher_forced_psnr(
    generator: torch.nn.Module,
    episodes: dict[str, np.ndarray],
    sampler_steps: int = 1,
    count: int = 1024,
    batch_size: int = 64,
    seed: int = 0,
    tokens: DigitTokenizer | None = None,
    maps: MapViews | None = None,
) -> dict[str, float]:
    """Next-frame PSNR over `count` evenly spread transitions, with copy-last-frame beside it
    (inputs as in `draw_next`).

    PSNR is taken of the mean squared error over all pixels of all transitions (not a
    mean of per-frame PSNRs, which perfect frames would make infinite).
    """
    model_se = copy_se = 0.0
    pixels = 0
    for batch, frames in teacher_forced_drawings(
        generator, episodes, sampler_steps, count, batch_size, seed, tokens, maps
    ):
        truth = batch["target"].double()
        model_se += ((frames.double() - truth) ** 2).sum().item()
        copy_se += ((batch["context"][:, -1].double() - truth) ** 2).sum().item()
        pixels += truth.numel()
    return {"psnr": psnr(model_se / pixels), "copy_last_psnr": psnr(copy_se / pixels)}


def read_as_truth(drawn: np.ndarray, truth: np.ndarray, read_frame) -> dict[str, int]:
    """How many of the drawn frames the frame reader reads exactly as the true ones ("all"),
    and, per field of the reading (values, the player, ...), how many read that field so."""
    counts: dict[str, int] = {"all": 0}
    for frame, target in zip(drawn, truth, strict=True):
        reading, expected = read_frame(frame), read_frame(target)
        counts["all"] += reading == expected
        for name in expected.__dataclass_fields__:
            same = getattr(reading, name) == getattr(expected, name)
            counts[name] = counts.get(name, 0) + same
    return counts


def teacher_forced_reading(
    generator: torch.nn.Module,
    episodes: dict[str, np.ndarray],
    read_frame,
    sampler_steps: int = 1,
    count: int = 1024,
    tokens: DigitTokenizer | None = None,
    maps: MapViews | None = None,
    palette: Palette | None = None,
) -> dict[str, float]:
    """The share of `count` evenly spread transitions whose drawing (inputs as in
    `draw_next`, snapped to `palette` as in play) the frame reader reads exactly as the
    engine's next frame ("all"), the share per field of the reading ("fields"), and the
    first over the "event_steps" transitions where an event fires ("event_all"). One
    step's exactness bounds a rollout's: it keeps to the rules only while every step does."""
    totals: dict[str, int] = {}
    event_all = event_steps = 0
    for batch, drawn in teacher_forced_drawings(
        generator, episodes, sampler_steps, count, tokens=tokens, maps=maps, palette=palette
    ):
        frames, truth = drawn.numpy(), batch["target"].numpy()
        for name, n in read_as_truth(frames, truth, read_frame).items():
            totals[name] = totals.get(name, 0) + n
        fired = (batch["events"].sum(dim=1) > 0).numpy()
        event_steps += int(fired.sum())
        event_all += read_as_truth(frames[fired], truth[fired], read_frame)["all"]
    every = totals.pop("all")
    return {
        "all": every / count,
        "fields": {name: n / count for name, n in totals.items()},
        "event_all": event_all / event_steps if event_steps else math.nan,
        "event_steps": event_steps,
    }


def reading_by_event(
    generator: torch.nn.Module,
    episodes: dict[str, np.ndarray],
    read_frame,
    event_names: tuple[str, ...],
    sampler_steps: int = 1,
    count: int = 256,
    tokens: DigitTokenizer | None = None,
    maps: MapViews | None = None,
    palette: Palette | None = None,
) -> dict[str, dict[str, float]]:
    """Per event of `event_names` (the data's event columns) that the data holds: the share
    of drawings the frame reader reads exactly as the engine's next frame over up to
    `count` of the transitions where it fires, evenly spread (inputs as in `draw_next`),
    and how many there were ("all", "steps"). A rare event is the one a rollout tends to
    part at, and an even spread over all transitions holds few of them."""
    scores = {}
    for column, name in enumerate(event_names):
        episode, target = np.nonzero(episodes["events"][:, 1:, column])
        if not len(episode):
            continue
        rows = np.unique(np.linspace(0, len(episode) - 1, min(count, len(episode))).astype(int))
        picks = episode[rows], target[rows] + 1
        read = 0
        for batch, drawn in teacher_forced_drawings(
            generator, episodes, sampler_steps, len(rows), tokens=tokens, maps=maps,
            palette=palette, picks=picks,
        ):  # fmt: skip
            read += read_as_truth(drawn.numpy(), batch["target"].numpy(), read_frame)["all"]
        scores[name] = {"all": read / len(rows), "steps": len(rows)}
    return scores


def worst_drawn(
    generator: torch.nn.Module,
    episodes: dict[str, np.ndarray],
    count: int,
    candidates: int,
    sampler_steps: int = 1,
    tokens: DigitTokenizer | None = None,
    maps: MapViews | None = None,
    batch_size: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """Flat indices (episode * T + target - 1) of the `count` transitions, among
    `candidates` spread evenly over `episodes`, that the generator draws furthest from the
    true next frame (squared error), teacher-forced (inputs as in `draw_next`): its own
    hardest cases, worst first."""
    from maag.models import bf16_is_fast
    from maag.models.flow import sampler_for

    transitions = TransitionSampler(episodes, generator.config.context_frames, maps=maps)
    steps = episodes["actions"].shape[1]
    episode, target = transitions.evenly_spaced(min(candidates, episodes["actions"].size))
    sampler = sampler_for(generator, sampler_steps)
    noise = torch.Generator().manual_seed(seed)
    errors = np.empty(len(episode), np.float64)
    was_training = generator.training
    generator.eval()
    for start in range(0, len(episode), batch_size):
        rows = slice(start, start + batch_size)
        batch = transitions.gather(episode[rows], target[rows])
        # a ranking: bf16 is close enough, where it is fast
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_is_fast("cpu")):
            frames = draw_next(generator, batch, sampler, noise, tokens, maps)
        errors[rows] = ((frames.double() - batch["target"].double()) ** 2).sum((1, 2, 3)).numpy()
    generator.train(was_training)
    worst = np.argsort(-errors, kind="stable")[:count]
    return episode[worst] * steps + target[worst] - 1


def told_events_drawn(
    generator: torch.nn.Module,
    episodes: dict[str, np.ndarray],
    read_frame,
    tokens: DigitTokenizer,
    sampler_steps: int = 1,
    batch_size: int = 64,
    seed: int = 0,
    maps: MapViews | None = None,
) -> dict[str, float]:
    """Whether the generator draws the events it is told, at the steps whose data holds an
    alternative outcome (see maag.data): told each step's true events, then the
    alternative's, the share of drawings the frame reader reads exactly as the engine's
    frame of that outcome (values, sprites, everything it reads). With `maps`, the map's
    views of the true past frames, as `draw_next` takes them."""
    from maag.models.flow import sampler_for

    alternatives = episodes["alt_step"]
    transitions = TransitionSampler(episodes, generator.config.context_frames, maps=maps)
    sampler = sampler_for(generator, sampler_steps)
    noise = torch.Generator().manual_seed(seed)
    drawn = {"true": 0, "alternative": 0}
    was_training = generator.training
    generator.eval()
    for start in range(0, len(alternatives), batch_size):
        rows = slice(start, start + batch_size)
        batch = transitions.gather(*alternatives[rows].T)
        told = {
            "true": batch,
            "alternative": batch | {
                "target": torch.from_numpy(episodes["alt_frames"][rows]),
                "values": torch.from_numpy(episodes["alt_values"][rows]).long(),
                "events": torch.from_numpy(episodes["alt_events"][rows]).long(),
            },
        }  # fmt: skip
        for outcome, inputs in told.items():
            frames = draw_next(generator, inputs, sampler, noise, tokens, maps).numpy()
            drawn[outcome] += read_as_truth(frames, inputs["target"].numpy(), read_frame)["all"]
    generator.train(was_training)
    count = len(alternatives)
    return {outcome: n / count for outcome, n in drawn.items()} | {"count": count}


def redrawn_after_loss(
    generator: torch.nn.Module,
    episodes: dict[str, np.ndarray],
    read_frame,
    sprite_mask,
    tokens: DigitTokenizer | None = None,
    sampler_steps: int = 1,
    count: int = 512,
    palette=None,
    seed: int = 0,
) -> dict[str, float]:
    """Whether the generator draws again what its last frame lost: at `count` evenly spread
    transitions whose last context frame shows a sprite where the frame before did not (a
    ball's new place), teacher-forced (inputs as in `draw_next`), the share of drawings the
    frame reader reads exactly as the engine's next frame, with the last frame as it is and
    with those sprite pixels taken from the frame before (`drop_new_sprites`: drawn
    nowhere). Drawings are snapped to `palette` where given, as in play."""
    from maag.models.flow import sampler_for

    transitions = TransitionSampler(episodes, generator.config.context_frames)
    episode, target = transitions.evenly_spaced(episodes["actions"].size)
    frames = episodes["frames"]
    moved = [
        i for i, (e, t) in enumerate(zip(episode, target, strict=True))
        if t >= 2 and (sprite_mask(frames[e, t - 1]) & ~sprite_mask(frames[e, t - 2])).any()
    ]  # fmt: skip
    picked = np.asarray(moved)[np.linspace(0, len(moved) - 1, min(count, len(moved))).astype(int)]
    sampler = sampler_for(generator, sampler_steps)
    noise = torch.Generator().manual_seed(seed)
    drawn = {"as_is": 0, "lost": 0}
    was_training = generator.training
    generator.eval()
    for start in range(0, len(picked), 64):
        rows = picked[start : start + 64]
        batch = transitions.gather(episode[rows], target[rows])
        every = torch.ones(len(rows), dtype=torch.bool)
        lost = batch | {"context": drop_new_sprites(batch["context"], every, sprite_mask)}
        for case, inputs in (("as_is", batch), ("lost", lost)):
            frames = draw_next(generator, inputs, sampler, noise, tokens, palette=palette)
            drawn[case] += read_as_truth(frames.numpy(), batch["target"].numpy(), read_frame)["all"]
    generator.train(was_training)
    return {case: n / max(1, len(picked)) for case, n in drawn.items()} | {"count": len(picked)}
