"""Measurements of a generator against ground truth."""

from __future__ import annotations

import math

import numpy as np
import torch

from maag.numerical import DigitTokenizer, blank_hud
from maag.spatial import generator_inputs
from maag.transitions import MapViews, TransitionSampler


def psnr(mse: float) -> float:
    """PSNR in dB of 8-bit images from their mean squared error (inf when identical)."""
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


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
    """Next-frame PSNR over `count` evenly spread transitions, with copy-last-frame beside it.

    PSNR is taken of the mean squared error over all pixels of all transitions (not a
    mean of per-frame PSNRs, which perfect frames would make infinite). With `tokens`, the
    generator is shown the true values' digit tokens, as from a perfect record; with
    `maps`, the spatial map's views of the true past frames. A generator built for a module
    that is not given gets the module's "off" inputs, as in play.
    """
    from maag.models.flow import FlowSampler, stack_context, to_uint8, to_unit

    config = generator.config
    transitions = TransitionSampler(episodes, config.context_frames, maps=maps)
    episode, target = transitions.evenly_spaced(count)
    sampler = FlowSampler(sampler_steps)
    noise = torch.Generator().manual_seed(seed)
    model_se = copy_se = 0.0
    pixels = 0
    was_training = generator.training
    generator.eval()
    for start in range(0, count, batch_size):
        batch = transitions.gather(
            episode[start : start + batch_size], target[start : start + batch_size]
        )
        context = to_unit(batch["context"])
        n, hud = len(context), config.hud_height
        base, extra = context[:, -1], None
        if maps:
            base, extra = generator_inputs(
                base, batch["canvas"], batch["known"], hud, batch["camera_move"], batch["sprites"]
            )
        elif config.extra_channels:  # module off: a map that knows nothing, as in play
            h, w = context.shape[-2] - hud, context.shape[-1]
            empty = np.zeros((n, h, w, 3), np.uint8), np.zeros((n, h, w), bool)
            base, extra = generator_inputs(base, *empty, hud)
        cond_ids = None
        if tokens:
            cond_ids = tokens.batch(
                batch["values"], torch.ones(n, dtype=torch.bool), batch["events"]
            )
            every = torch.ones(n, dtype=torch.bool)
            base, context = blank_hud(base, every, hud), blank_hud(context, every, hud)
        elif config.num_cond_tokens:  # module off: null tokens, as in play
            cond_ids = torch.full((n, config.num_cond_tokens), DigitTokenizer.NULL)
        frames = sampler.sample(
            generator, base, stack_context(context), batch["action"], noise,
            extra=extra, cond_ids=cond_ids,
        )  # fmt: skip
        truth = batch["target"].double()
        model_se += ((to_uint8(frames).double() - truth) ** 2).sum().item()
        copy_se += ((batch["context"][:, -1].double() - truth) ** 2).sum().item()
        pixels += truth.numel()
    generator.train(was_training)
    return {"psnr": psnr(model_se / pixels), "copy_last_psnr": psnr(copy_se / pixels)}
